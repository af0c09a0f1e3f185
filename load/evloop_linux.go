//go:build linux

package load

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"golang.org/x/sys/unix"
)

// eventLoopsAvailable reports whether this platform has the epoll engine.
const eventLoopsAvailable = true

// The epoll engine drives plaintext REST load the way wrk does: a few OS
// threads, each with an epoll set of non-blocking connections, and no
// goroutine per request. A request costs one write, one read and a share
// of one epoll_wait among every connection that is ready; Go's netpoller
// would add a goroutine park and wake-up per request, which is most of the
// client CPU at loopback speeds.
//
// Each loop owns its connections and its share of the plan: in a closed
// loop, a connection sends its next request as soon as its response is
// complete; in an open loop, loop k of K sends requests k, k+K, k+2K, ...
// at their intended times (a timerfd wakes it) on any idle connection,
// opening another one (up to its share of MaxInflight) when all are busy.

// Epoll user data for the loop's own descriptors; connections use their
// index in loop.conns.
const (
	evTimer = -1
	evWake  = -2
)

// The open loop reads answers late, in the wake-up of the next request
// due, instead of waking for each the moment it arrives: one wake-up a
// request instead of two. The kernel stamps each segment as it reaches the
// socket (SO_TIMESTAMPNS_NEW), and recvmsg hands over the stamp of the last
// one read, so the latency is the answer's arrival however late the loop
// reads it. A loop waits without its connections' answers (in its quiet
// epoll set, which has the wake eventfd and every connection for a close
// or an error only) only while a request is due within harvestWithin.
// When that wait times out, the loop reads the requests in flight
// directly, one recvmsg each, without asking epoll which are ready: an
// answered connection is free again for the request due, and an idle
// connection the server closed has woken the wait, which then looks at
// every connection as any other wait does. Answers that arrive
// while nothing is due soon, connects, blocked writes and answers that
// arrive in pieces wake the loop at once as before: a late read of those
// would delay the request itself, which no stamp can undo.
var harvestWithin = time.Millisecond

type connState uint8

const (
	connIdle       connState = iota // no request; fd may be open (keep-alive) or -1
	connConnecting                  // non-blocking connect in progress, a request waiting
	connWriting                     // request partly written
	connReading                     // request written, response not complete
)

// loopConn is one keep-alive connection and the request on it.
type loopConn struct {
	index    int
	fd       int
	state    connState
	wantsOut bool // EPOLLOUT is in the interest set

	payload       int
	written       int
	wroteAt       time.Duration  // when the request was written whole
	dialAt        time.Duration  // when the connect began
	retryAt       time.Duration  // closed loop: when the failed connection may send again
	backoff       failureBackoff // closed loop
	start         time.Duration  // the sample's start: intended (open loop) or actual send time
	sent          time.Duration  // when it actually left (start plus the send lag)
	deadline      time.Duration
	phase         Phase
	inWindow      bool
	reused        bool  // the connection carried an answered request before this one
	retried       bool  // this request is on its second connection (see resend)
	bytesSent     int64 // bytes of this request written, every try
	bytesReceived int64 // bytes of its answer read

	framer     *responseFramer
	prev, next *loopConn // in the loop's in-flight list, oldest first

	// unsettled: a connect, a blocked write or a partly read answer is
	// under way; the loop may not wait without the connection
	unsettled bool
}

// eventLoop is one thread's connections and share of the plan.
type eventLoop struct {
	r    *runner
	rest *REST
	sa   unix.Sockaddr
	fam  int

	ep, timer, wake int
	wakeMu          sync.Mutex // interrupt writes to wake from another goroutine; closeAll closes it
	events          []unix.EpollEvent
	conns           []*loopConn
	idle            []*loopConn
	retry           []*loopConn // closed loop: connections whose request failed, to send again after their back-off
	maxConns        int

	head, tail *loopConn     // requests in flight, in deadline order (the timeout is the same for all)
	quiet      int           // epoll set with the wake eventfd and the connections' closes, for waits that harvest answers late; -1 without
	harvest    bool          // a quiet wait timed out: read the requests in flight without an epoll look
	stamps     bool          // connections carry the kernel's receive time stamps (open loop)
	unsettled  int           // connections with loopConn.unsettled set
	wall       int64         // the wall clock (ns since the epoch) when now was read, to place the kernel's stamps
	rx         rxMessage     // recvmsg's arguments, reused
	waits      int64         // waits that could block; added to loopWaits at the end
	armed      time.Duration // when the timerfd fires (it is used only without epoll_pwait2)
	noPwait2   bool          // the kernel has no epoll_pwait2
	rawWaits   bool          // short waits may hold the loop's P (see rawWaitWithin)
	stopping   bool          // the plan is done or the run interrupted: no more requests
	cancelled  bool          // the run was interrupted
	graceEnd   time.Duration // set once the run is interrupted

	// open loop only
	open    *openSchedule
	nextSeq int64
	stride  int64
	endAt   time.Duration // the end of the steady phase's schedule by --duration; neverArmed without one
	wait    slotWait      // saturated requests: the backlog of a wait for a free slot
	sendLag *hdrhistogram.Histogram
}

const neverArmed = time.Duration(1<<63 - 1)

// loopWaits counts the waits of every loop that could block (each is a
// wake-up unless something was ready already), for tests of how often the
// loops wake.
var loopWaits atomic.Int64

// ownEngine is the epoll engine, when NewREST chose it.
func (r *REST) ownEngine() engine {
	if r.engine != EngineEpoll {
		return nil
	}
	return eventLoopEngine{r}
}

// eventLoopEngine runs a plan on event loops over rest's connections.
type eventLoopEngine struct{ rest *REST }

// drive runs the plan on K event loops and returns when they are done or
// ctx is cancelled.
func (e eventLoopEngine) drive(ctx context.Context, r *runner) error {
	if ctx.Err() != nil {
		return nil // interrupted before the load began: send nothing
	}
	sa, fam, err := e.rest.sockaddr()
	if err != nil {
		return err
	}
	slots := r.plan.slots()
	k := loopCount(r.plan, maxEventLoops(runtime.GOMAXPROCS(0)))
	loops := make([]*eventLoop, 0, k)
	for i := 0; i < k; i++ {
		share := slots / k
		if i < slots%k {
			share++
		}
		l, err := newEventLoop(r, e.rest, sa, fam, share)
		if err != nil {
			for _, l := range loops {
				l.closeAll()
			}
			return err
		}
		l.rawWaits = runtime.GOMAXPROCS(0) > k
		if r.open != nil {
			l.open, l.nextSeq, l.stride, l.sendLag = r.open, int64(i), int64(k), newSendLag()
			if err := l.openQuiet(); err != nil {
				for _, l := range append(loops, l) {
					l.closeAll()
				}
				return err
			}
			l.endAt = neverArmed
			if r.plan.Duration > 0 {
				l.endAt = r.open.endAt
			}
		}
		loops = append(loops, l)
	}
	done := make(chan struct{})
	for _, l := range loops {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			l.run()
		}()
	}
	go func() {
		r.wg.Wait() // only the loops are in it
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// The loops stop sending and give the requests in flight the
		// grace period; the runner waits for them (r.wg) like for workers.
		for _, l := range loops {
			l.interrupt()
		}
	}
	return nil
}

func newEventLoop(r *runner, rest *REST, sa unix.Sockaddr, fam, maxConns int) (*eventLoop, error) {
	// unix.Connect writes into the Sockaddr (its raw form), so every loop
	// has its own.
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		own := *a
		sa = &own
	case *unix.SockaddrInet6:
		own := *a
		sa = &own
	}
	l := &eventLoop{r: r, rest: rest, sa: sa, fam: fam, ep: -1, timer: -1, wake: -1, quiet: -1, maxConns: maxConns,
		events: make([]unix.EpollEvent, 256), armed: neverArmed, graceEnd: neverArmed, wait: newSlotWait(), noPwait2: !usePwait2}
	var err error
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if l.timer, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		l.closeAll()
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	if l.wake, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.closeAll()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	for fd, tag := range map[int]int32{l.timer: evTimer, l.wake: evWake} {
		if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: tag}); err != nil {
			l.closeAll()
			return nil, fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	if r.plan.Rate == 0 {
		for i := 0; i < maxConns; i++ {
			l.addConn()
		}
	}
	return l, nil
}

// openQuiet sets up the late harvest of answers (see harvestWithin) when
// the kernel has epoll_pwait2; without it (or its nanosecond timeouts)
// waits in the quiet set would cost more than the wake-ups they save.
func (l *eventLoop) openQuiet() error {
	if l.noPwait2 {
		return nil
	}
	var err error
	if l.quiet, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	if err := unix.EpollCtl(l.quiet, unix.EPOLL_CTL_ADD, l.wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: evWake}); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	l.stamps = true
	return nil
}

func (l *eventLoop) addConn() *loopConn {
	c := &loopConn{index: len(l.conns), fd: -1, framer: newResponseFramer(int64(l.rest.cfg.MaxResponseBytes))}
	c.framer.stream = l.rest.newLLMStream()
	l.conns = append(l.conns, c)
	l.idle = append(l.idle, c)
	return c
}

// interrupt wakes the loop from another goroutine when the run is
// cancelled: the loop then stops sending and gives its requests in flight
// the grace period.
func (l *eventLoop) interrupt() {
	l.wakeMu.Lock()
	defer l.wakeMu.Unlock()
	if l.wake >= 0 { // not closed (and its number perhaps reused) by a finished loop
		var one = [8]byte{1}
		_, _ = unix.Write(l.wake, one[:])
	}
}

func (l *eventLoop) closeAll() {
	for _, c := range l.conns {
		if c.fd >= 0 {
			unix.Close(c.fd)
			c.fd = -1
		}
	}
	l.wakeMu.Lock()
	defer l.wakeMu.Unlock()
	for _, fd := range []int{l.timer, l.wake, l.ep, l.quiet} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	l.timer, l.wake, l.ep, l.quiet = -1, -1, -1, -1
}

// run is the loop: send what is due, wait for readiness or the next timer,
// handle what is ready, until the plan is done and nothing is in flight.
func (l *eventLoop) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer setTimerSlack(l.r.plan.sendSlack())()
	if loopThreadStarted != nil {
		loopThreadStarted()
	}
	defer l.closeAll()
	defer func() { loopWaits.Add(l.waits) }()
	if l.open != nil {
		defer func() { l.r.mergeLag(l.sendLag) }()
	}
	now := l.clock()
	if l.open != nil {
		l.dispatchDue(now)
	} else {
		for len(l.idle) > 0 && !l.stopping {
			c := l.idle[len(l.idle)-1]
			l.idle = l.idle[:len(l.idle)-1]
			l.sendNext(c, now)
		}
	}
	yieldAt := now + yieldEvery
	for {
		if now >= yieldAt {
			runtime.Gosched()
			yieldAt = now + yieldEvery
		}
		l.resendDue(now)
		if (l.stopping && l.head == nil) || now >= l.graceEnd {
			return
		}
		want := l.nextWake(now)
		n, err := l.waitFor(want, l.harvestLate(now, want))
		if err != nil && err != unix.EINTR {
			panic(fmt.Sprintf("epoll_wait: %v", err)) // only EBADF/EFAULT/EINVAL: a bug here
		}
		now = l.clock()
		if l.harvest && !l.harvestInflight(now) {
			// An unanswered request with newer ones behind it: ask
			// epoll which of those are answered.
			if n, err = l.look(); err != nil && err != unix.EINTR {
				panic(fmt.Sprintf("epoll_wait: %v", err))
			}
		}
		for i := 0; i < n; i++ {
			ev := l.events[i]
			switch ev.Fd {
			case evTimer:
				var b [8]byte
				_, _ = unix.Read(l.timer, b[:])
				l.armed = neverArmed
			case evWake:
				var b [8]byte
				_, _ = unix.Read(l.wake, b[:])
				l.cancel(now)
			default:
				l.handle(l.conns[ev.Fd], ev.Events, now)
			}
		}
		l.expire(now)
		if l.open != nil {
			l.dispatchDue(now)
		}
	}
}

// yieldEvery is how often the loop passes through the Go scheduler. The
// loop goroutine never blocks in Go (its waits are system calls), so the
// scheduler never sees it switch; sysmon then takes it for a goroutine
// that has run 10 ms and preempts it, which on a locked thread hands the
// P to another thread and back, and, having had work, sysmon polls every
// 20 us again for a millisecond before it backs off to 10 ms: thousands
// of wake-ups a second, more than the loop's own. A yield every 5 ms
// costs a few context switches and keeps sysmon asleep.
const yieldEvery = 5 * time.Millisecond

// nextWake is when the loop must wake at the latest: the first request
// deadline, back-off or grace end, or the next open-loop request's due
// time; neverArmed when only readiness can wake it.
func (l *eventLoop) nextWake(now time.Duration) time.Duration {
	want := l.graceEnd
	if l.head != nil && l.head.deadline < want {
		want = l.head.deadline
	}
	for _, c := range l.retry {
		want = min(want, c.retryAt)
	}
	if l.open != nil && !l.stopping {
		// With every slot taken, wake once at the due time all the same:
		// dispatchDue then notes that the request waits, which makes it
		// and the backlog behind it saturated.
		due := l.open.at(l.nextSeq)
		if due > l.endAt && l.endAt > now {
			due = l.endAt // stop at the end of the schedule, not when the next request would be due
		}
		if due < want && (len(l.idle) > 0 || len(l.conns) < l.maxConns || !l.wait.waiting) {
			want = due
		}
	}
	return want
}

// harvestInflight reads the answers of the requests in flight after a
// quiet wait that timed out, oldest first. Each was written whole and had
// no byte of its answer yet (harvestLate waits quietly only then). Answers
// mostly come in the order the requests went out, so the first that has
// none ends the reads: it reports false when newer requests are behind
// that one, for the loop to ask epoll about them instead of reading each
// (a read that finds nothing costs as much as the look).
func (l *eventLoop) harvestInflight(now time.Duration) bool {
	for c := l.head; c != nil; {
		next := c.next // reading c may finish it and take it off the list
		if c.state == connReading {
			l.read(c, now)
			if c.state == connReading && !c.framer.started { // no answer yet
				return next == nil
			}
		}
		c = next
	}
	return true
}

// clock reads the time since the run began and, for the receive stamps,
// the wall clock at the same instant.
func (l *eventLoop) clock() time.Duration {
	t := time.Now()
	l.wall = t.UnixNano()
	return t.Sub(l.r.rec.origin)
}

// harvestLate reports whether the loop may wait until want without its
// connections and read the answers that arrived meanwhile only then.
func (l *eventLoop) harvestLate(now, want time.Duration) bool {
	return l.stamps && l.head != nil && l.unsettled == 0 && want-now <= harvestWithin
}

// The loop's thread has the plan's SendSlack as its timer slack
// (PR_SET_TIMERSLACK): the kernel may wake it that much later than a
// timeout asks. An open-loop request due at t goes out between t and
// t+slack, plus the scheduling delay, when nothing else wakes the loop
// first; a lone timer fires at the end of its slack, so every request due
// within the slack of the first goes out in the same wake-up. The kernel's
// default for a thread is 50 us.

// waitFor waits in epoll until something is ready or the offset want has
// come (neverArmed: no timeout). The timeout is epoll_pwait2's, in
// nanoseconds; a kernel older than 5.11 has no epoll_pwait2, and the loop
// arms its timerfd instead, a wake-up and two system calls more per
// timeout.
//
// With quiet set, it waits in the quiet set, which only an interrupt
// wakes, and then looks at the connections without waiting.
func (l *eventLoop) waitFor(want time.Duration, quiet bool) (int, error) {
	if want == neverArmed {
		l.waits++
		return l.epollWait(l.ep, nil)
	}
	d := want - l.r.since()
	l.harvest = false
	if d > 0 && quiet {
		l.waits++
		ts := unix.NsecToTimespec(int64(d))
		n, err := l.epollWait(l.quiet, &ts)
		if err != nil && err != unix.EINTR {
			return 0, err
		}
		if n == 0 && err == nil {
			// Only time passed: the answers are in the sockets of the
			// requests in flight, and nothing else happened.
			l.harvest = true
			return 0, nil
		}
		d = 0 // an interrupt or a close: look at everything
	}
	if d <= 0 {
		return l.look()
	}
	l.waits++
	if !l.noPwait2 {
		ts := unix.NsecToTimespec(int64(d))
		n, err := l.epollWait(l.ep, &ts)
		if err != unix.ENOSYS {
			return n, err
		}
		l.noPwait2 = true
	}
	if want < l.armed {
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
		if err := unix.TimerfdSettime(l.timer, 0, &spec, nil); err != nil {
			panic(fmt.Sprintf("timerfd_settime: %v", err))
		}
		l.armed = want
	}
	return l.epollWait(l.ep, nil)
}

// look reports what is ready in the loop's epoll set without waiting,
// which needs none of the scheduler's bookkeeping for a call that may
// block.
func (l *eventLoop) look() (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.ep), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// epollWait is epoll_pwait2 on the set ep with timeout ts (nil: none), or
// epoll_wait without a timeout when the kernel has no epoll_pwait2. A
// wait longer than rawWaitWithin goes through the scheduler
// (entersyscall), as a call that may block must, so that the loop's P
// serves other goroutines meanwhile. (Before the loop yielded every
// yieldEvery, raw waits of any length made sysmon preempt the loop every
// 10 ms and hand its thread a P back through another thread; on a busy
// machine the open loop then fell behind its schedule more often.)
func (l *eventLoop) epollWait(ep int, ts *unix.Timespec) (int, error) {
	if l.noPwait2 {
		return unix.EpollWait(ep, l.events, -1)
	}
	call := unix.Syscall6
	if l.rawWaits && ts != nil && ts.Sec == 0 && ts.Nsec <= int64(rawWaitWithin) {
		call = unix.RawSyscall6
	}
	n, _, errno := call(unix.SYS_EPOLL_PWAIT2, uintptr(ep), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), uintptr(unsafe.Pointer(ts)), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// rawWaitWithin: a shorter wait goes straight to the kernel
// (RawSyscall6) when the loops leave the process a P (eventLoop.rawWaits).
// The scheduler's bookkeeping for a call that may block cost a second
// context switch per wake-up: a thread that only waits 100 us at a time
// in epoll_pwait2 (and yields every 5 ms, as the loop does) spent 15-18 us
// of CPU a wake-up through Syscall6 and 8-10 us through RawSyscall6, with
// a third of the context switches. The bound keeps what the scheduler
// cannot see short: the loop's P is held meanwhile, and a stop-the-world
// waits for it.
const rawWaitWithin = time.Millisecond

// loopThreadStarted, when set (by tests), is called on each loop's
// thread once the thread is set up.
var loopThreadStarted func()

// usePwait2 is false in tests of the loop on a kernel without
// epoll_pwait2.
var usePwait2 = true

// setTimerSlack sets the calling thread's timer slack to d and returns a
// function that restores it; the loop's goroutine is locked to its thread.
func setTimerSlack(d time.Duration) (restore func()) {
	old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil || unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(d), 0, 0, 0) != nil {
		return func() {}
	}
	return func() { _ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0) }
}

// cancel stops sending; requests in flight get the run's grace period.
func (l *eventLoop) cancel(now time.Duration) {
	if l.cancelled {
		return
	}
	l.cancelled, l.stopping = true, true
	l.graceEnd = now + l.r.plan.grace() + 100*time.Millisecond // the runner freezes the recorder at grace
}

// dispatchDue sends every open-loop request whose intended time has come,
// as long as a connection is free or may be opened. When every slot is
// taken, the due requests wait for one; all of that backlog is saturated,
// and if the schedule ends while it waits, the loop stops sending.
func (l *eventLoop) dispatchDue(now time.Duration) {
	sched := l.open
	for !l.stopping {
		intended := sched.at(l.nextSeq)
		if intended > now {
			if intended >= l.endAt && now >= l.endAt {
				// No request is due before the schedule ends: the phase
				// ends now unless a profile window holds it open.
				l.stopping = !l.r.plan.held()
			}
			return
		}
		full := len(l.idle) == 0 && len(l.conns) >= l.maxConns
		if full {
			l.wait.full()
		} else {
			l.wait.resumed(now)
		}
		saturated := l.wait.saturated(intended)
		// The backlog of a wait for a slot once the schedule is over is
		// not sent, also when a slot has just come free.
		if saturated && now >= l.endAt && sched.overWhileWaiting(now) {
			l.stopping = true
			sched.countNotSent(l.nextSeq, l.stride)
			return
		}
		if full {
			return
		}
		var c *loopConn
		if len(l.idle) > 0 {
			c = l.idle[len(l.idle)-1]
			l.idle = l.idle[:len(l.idle)-1]
		} else {
			c = l.addConn()
			l.idle = l.idle[:len(l.idle)-1]
		}
		// Loops take turns by request number, and one may run ahead of
		// another: the phase goes by the number, not by who asks first.
		phase, more := sched.phase(l.nextSeq)
		if !more {
			if sched.over.Load() {
				// Another loop found the schedule over while requests
				// waited for a slot: this loop's are not sent either.
				sched.countNotSent(l.nextSeq, l.stride)
			}
			l.stopping = true
			l.idle = append(l.idle, c)
			return
		}
		l.nextSeq += l.stride
		l.r.noteLag(l.sendLag, now-intended, saturated)
		l.start(c, phase, intended, now)
	}
}

// sendNext starts the next closed-loop request on c, or stops the loop when
// the plan is done.
func (l *eventLoop) sendNext(c *loopConn, now time.Duration) {
	if l.stopping {
		l.idle = append(l.idle, c)
		return
	}
	_, phase, more := l.r.closedPhase(func() time.Duration { return now })
	if !more {
		l.stopping = true
		l.idle = append(l.idle, c)
		return
	}
	l.start(c, phase, now, now)
}

// start sends the next payload on c, connecting first if c has no
// connection.
func (l *eventLoop) start(c *loopConn, phase Phase, startAt, now time.Duration) {
	c.phase, c.start, c.sent, c.inWindow = phase, startAt, max(now, startAt), l.r.begin()
	c.payload = l.r.pick.Next()
	c.framer.stream.begin(phase, c.inWindow, startAt, l.rest.llmStreamed(c.payload))
	c.retried = false
	c.bytesSent, c.bytesReceived = 0, 0
	c.deadline = now + l.rest.cfg.Timeout
	l.pushInflight(c)
	l.send(c, now)
}

// send writes c's request, connecting first if c has no connection.
func (l *eventLoop) send(c *loopConn, now time.Duration) {
	c.written = 0
	if c.fd < 0 {
		c.dialAt = now
		if err := l.connect(c); err != nil {
			l.fail(c, err, now)
			return
		}
		if c.state == connConnecting {
			return
		}
		l.rest.noteConnect(l.r.since() - now) // connected at once (loopback)
	}
	c.state = connWriting
	l.write(c, now)
}

func (l *eventLoop) connect(c *loopConn) error {
	fd, err := unix.Socket(l.fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if l.stamps && unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS_NEW, 1) != nil {
		l.stamps = false // a kernel before 5.1: answers are read at once and timed when read
	}
	c.fd = fd
	c.framer.reset()
	c.wantsOut = true
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT, Fd: int32(c.index)}); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	if l.quiet >= 0 {
		// A close or an error (EPOLLHUP and EPOLLERR are implied) ends a
		// quiet wait; an answer does not.
		if err := unix.EpollCtl(l.quiet, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLRDHUP, Fd: int32(c.index)}); err != nil {
			return os.NewSyscallError("epoll_ctl", err)
		}
	}
	switch err := unix.Connect(fd, l.sa); err {
	case nil:
		c.state = connWriting
	case unix.EINPROGRESS:
		c.state = connConnecting
		l.unsettle(c, true)
	default:
		return l.opError("dial", "connect", err)
	}
	return nil
}

func (l *eventLoop) opError(op, call string, errno error) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: fdAddr(l.rest.addr), Err: os.NewSyscallError(call, errno)}
}

// fdAddr names the target in error messages.
type fdAddr string

func (a fdAddr) Network() string { return "tcp" }
func (a fdAddr) String() string  { return string(a) }

// handle reacts to readiness of c's connection.
func (l *eventLoop) handle(c *loopConn, events uint32, now time.Duration) {
	if c.fd < 0 {
		return // closed earlier in this batch
	}
	switch c.state {
	case connIdle:
		// A keep-alive connection with nothing asked: the server closed it
		// or sent something unasked (an answer to nothing, a 408 before an
		// idle close). Drop it; the next request redials. The loop handles
		// every event before it sends what is due, so no request goes out
		// on a connection whose close or bytes epoll has reported.
		l.closeConn(c)
	case connConnecting:
		errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && errno != 0 {
			err = unix.Errno(errno)
		}
		if err != nil {
			l.fail(c, l.opError("dial", "connect", err), now)
			return
		}
		l.rest.noteConnect(now - c.dialAt)
		c.state = connWriting
		l.unsettle(c, false)
		l.write(c, now)
	case connWriting:
		if events&unix.EPOLLIN != 0 {
			l.read(c, now) // an early answer (a 413 before the body is read, say)
			if c.state != connWriting {
				return
			}
		}
		l.write(c, now)
	case connReading:
		l.read(c, now)
	}
}

func (l *eventLoop) write(c *loopConn, now time.Duration) {
	req := l.rest.requests[c.payload]
	for c.written < len(req) {
		n, errno := nonblockingIO(unix.SYS_WRITE, c.fd, req[c.written:])
		if errno == unix.EAGAIN {
			l.setWantsOut(c, true)
			l.unsettle(c, true)
			return
		}
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			l.fail(c, l.opError("write", "write", errno), now)
			return
		}
		c.written += n
		c.bytesSent += int64(n)
	}
	l.setWantsOut(c, false)
	l.unsettle(c, c.framer.started)
	c.state = connReading
	c.wroteAt = now
}

// unsettle marks c as having I/O under way that the loop must see at once
// (see harvestWithin), or not.
func (l *eventLoop) unsettle(c *loopConn, on bool) {
	if c.unsettled == on {
		return
	}
	c.unsettled = on
	if on {
		l.unsettled++
	} else {
		l.unsettled--
	}
}

func (l *eventLoop) setWantsOut(c *loopConn, on bool) {
	if c.wantsOut == on {
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.index)}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		panic(fmt.Sprintf("epoll_ctl: %v", err))
	}
	c.wantsOut = on
}

func (l *eventLoop) read(c *loopConn, now time.Duration) {
	at := now // when the bytes read arrived
	for {
		space := c.framer.space()
		var n int
		var errno unix.Errno
		if l.stamps {
			var stamp int64
			n, stamp, errno = l.rx.recv(c.fd, space)
			if stamp != 0 {
				at = l.arrival(c, stamp, now)
			}
		} else {
			n, errno = nonblockingIO(unix.SYS_READ, c.fd, space)
		}
		switch {
		case errno == unix.EAGAIN:
			l.unsettle(c, c.framer.started)
			return
		case errno == unix.EINTR:
			continue
		case errno != 0:
			l.fail(c, l.opError("read", "read", errno), now)
			return
		case n == 0:
			done, ferr := c.framer.eof()
			if done {
				l.complete(c, at, now) // a close has no stamp: the answer's last bytes'
			} else {
				l.fail(c, ferr, now)
			}
			return
		}
		c.bytesReceived += int64(n)
		c.framer.stream.arrived(at)
		done, ferr := c.framer.advance(n)
		if ferr != nil {
			l.fail(c, ferr, now)
			return
		}
		l.streamAlive(c, now)
		if done {
			l.complete(c, at, now)
			return
		}
		if n < len(space) {
			l.unsettle(c, true) // an answer in pieces: epoll reports the rest
			return
		}
		c.framer.filled()
	}
}

// complete records c's request, answered at the time at, and, in a closed
// loop, sends the next one on it. A 408 on a kept-alive connection is most
// likely the server closing it for idleness, not an answer (see
// restSender.exchange, which the goroutine engine follows): the request
// goes again.
func (l *eventLoop) complete(c *loopConn, at, now time.Duration) {
	l.unsettle(c, false)
	out := l.rest.statusOutcome(c.framer.status, c.framer.errorBody())
	if c.framer.closeAfter { // always after a 408 or bytes nobody asked for
		reused := c.reused
		l.closeConn(c)
		if out.Code == 408 && reused && !c.retried && at-c.wroteAt <= l.rest.resendWindow() {
			l.resend(c, now)
			return
		}
	} else {
		c.reused = true
	}
	if out.Code != 408 {
		l.rest.noteAnswer(at - c.wroteAt)
	}
	l.finish(c, out, at, now)
}

// arrival places a receive stamp (wall clock, ns) on the run's clock: now
// is when the loop woke, at the wall clock l.wall. The stamp is kept
// after the request's send, and before the time it is when the bytes are
// read, should the wall clock have been set meanwhile. Bytes may arrive
// after the loop read its clock (a late server's answer, between that
// read and this recv): their stamp is later than now, and it holds.
func (l *eventLoop) arrival(c *loopConn, stamp int64, now time.Duration) time.Duration {
	at := now - time.Duration(l.wall-stamp)
	if at > now {
		return min(at, time.Since(l.r.rec.origin))
	}
	return max(at, c.sent)
}

// fail records c's request as failed with err and drops the connection,
// unless the server closed a kept-alive connection before any byte of an
// answer: then the request goes again.
func (l *eventLoop) fail(c *loopConn, err error, now time.Duration) {
	if l.streamComplete(c, now) {
		return
	}
	reused := c.reused
	written := c.state == connReading // a write that fails sent nothing the server took
	l.closeConn(c)
	if reused && !c.retried && !c.framer.started && closedByPeer(err) && (!written || now-c.wroteAt <= l.rest.resendWindow()) {
		l.resend(c, now)
		return
	}
	l.finish(c, restError(err), now, now)
}

// resend sends c's request once more, on a new connection: the server
// closed the kept-alive one it went out on without taking it, as a server
// closing idle connections may just as a request arrives. Browsers and
// Go's net/http do the same. The request keeps its start (its latency
// includes the lost try) and its deadline; a failure of the second try is
// counted.
func (l *eventLoop) resend(c *loopConn, now time.Duration) {
	l.rest.resent.Add(1)
	c.retried = true
	l.send(c, now)
}

// finish records c's request as ended at done with out; now is the time
// of the loop's wake-up.
func (l *eventLoop) finish(c *loopConn, out Outcome, done, now time.Duration) {
	l.unlinkInflight(c)
	c.state = connIdle
	out.BytesSent, out.BytesReceived = c.bytesSent, c.bytesReceived
	out = c.framer.stream.end(out, done)
	l.r.finish(Sample{Phase: c.phase, InWindow: c.inWindow, Start: c.start, Sent: c.sent, Done: done, Outcome: out})
	switch {
	case l.open != nil:
		l.idle = append(l.idle, c)
	default:
		if pause := c.backoff.after(out); pause > 0 {
			// Not from here even without a pause: a failure can happen
			// inside sendNext (a refused connect), and resending from it
			// would recurse once per failure.
			c.retryAt = now + pause
			l.retry = append(l.retry, c)
			return
		}
		l.sendNext(c, now)
	}
}

// resendDue sends again on the closed-loop connections whose back-off
// after a failure is over (or stops them when the plan is done).
func (l *eventLoop) resendDue(now time.Duration) {
	kept := l.retry[:0]
	var due []*loopConn
	for _, c := range l.retry {
		if c.retryAt <= now || l.stopping {
			due = append(due, c)
		} else {
			kept = append(kept, c)
		}
	}
	l.retry = kept
	for _, c := range due {
		l.sendNext(c, now)
	}
}

func (l *eventLoop) closeConn(c *loopConn) {
	if c.fd >= 0 {
		unix.Close(c.fd) // also leaves the epoll set
		c.fd = -1
	}
	c.wantsOut, c.reused = false, false
	l.unsettle(c, false)
}

// expire fails the requests whose deadline has passed.
func (l *eventLoop) expire(now time.Duration) {
	for l.head != nil && l.head.deadline <= now {
		l.fail(l.head, errResponseTimeout, now)
	}
}

func (l *eventLoop) pushInflight(c *loopConn) {
	c.prev, c.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *eventLoop) unlinkInflight(c *loopConn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

// rxMessage is recvmsg's message header, buffer and control buffer for
// one receive time stamp, kept to reuse (the loop's hot path allocates
// nothing).
type rxMessage struct {
	hdr unix.Msghdr
	iov unix.Iovec
	ctl [8]uint64 // room for one cmsg with a 16-byte __kernel_timespec
}

// recv is recvmsg(2) on a non-blocking socket into p; stamp is
// the kernel's receive time of the last byte read (wall clock, ns), or 0
// when it gave none. Straight to the kernel, as nonblockingIO.
func (m *rxMessage) recv(fd int, p []byte) (n int, stamp int64, errno unix.Errno) {
	if len(p) == 0 {
		return 0, 0, 0
	}
	m.iov.Base = &p[0]
	m.iov.SetLen(len(p))
	m.hdr.Iov = &m.iov
	m.hdr.SetIovlen(1)
	m.hdr.Control = (*byte)(unsafe.Pointer(&m.ctl[0]))
	m.hdr.SetControllen(int(unsafe.Sizeof(m.ctl)))
	m.hdr.Flags = 0
	r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&m.hdr)), 0)
	if e != 0 {
		return 0, 0, e
	}
	// The stamp is the only control message asked for; a cut one
	// (MSG_CTRUNC) is not trusted.
	const dataAt = (unix.SizeofCmsghdr + 7) &^ 7
	if m.hdr.Controllen >= dataAt+16 && m.hdr.Flags&unix.MSG_CTRUNC == 0 {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&m.ctl[0]))
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_TIMESTAMPNS_NEW {
			ts := (*[2]int64)(unsafe.Pointer(uintptr(unsafe.Pointer(&m.ctl[0])) + dataAt))
			stamp = ts[0]*1e9 + ts[1]
		}
	}
	return int(r), stamp, 0
}

// lookupIP resolves names for the epoll engine; tests replace it.
var lookupIP = net.LookupIP

// nonblockingIO is read(2) or write(2) on a non-blocking socket. Such a
// call never waits, so it goes straight to the kernel (RawSyscall) without
// telling the scheduler it might block: that bookkeeping (entersyscall,
// exitsyscall) was a tenth of the loop's user time.
func nonblockingIO(trap uintptr, fd int, p []byte) (int, unix.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), errno
}

// sockaddr finds the address to connect to, once, before the load. A name
// with several addresses (such as "localhost": ::1 and 127.0.0.1) gets the
// first that accepts a connection, as Go's dialer tries them in turn; when
// none does, the first, for the run to count the failures.
func (r *REST) sockaddr() (unix.Sockaddr, int, error) {
	host, port, err := net.SplitHostPort(r.addr)
	if err != nil {
		return nil, 0, err
	}
	var addr *net.TCPAddr
	if ips, err := lookupIP(host); err == nil && len(ips) > 1 {
		for _, ip := range ips {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), port), r.cfg.Timeout)
			if err == nil {
				addr, _ = conn.RemoteAddr().(*net.TCPAddr)
				conn.Close()
				break
			}
		}
		if addr == nil {
			addr = &net.TCPAddr{IP: ips[0]}
			addr.Port, _ = net.LookupPort("tcp", port)
		}
	}
	if addr == nil {
		if addr, err = net.ResolveTCPAddr("tcp", net.JoinHostPort(host, port)); err != nil {
			return nil, 0, err
		}
	}
	if ip4 := addr.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: addr.Port}
		copy(sa.Addr[:], ip4)
		return sa, unix.AF_INET, nil
	}
	sa := &unix.SockaddrInet6{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To16())
	if addr.Zone != "" {
		if ifi, err := net.InterfaceByName(addr.Zone); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa, unix.AF_INET6, nil
}
