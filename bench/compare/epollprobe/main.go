//go:build linux

// Command epollprobe measures what a closed loop costs without Go's
// netpoller: one locked OS thread, raw epoll, N keep-alive connections to a
// loopback REST server, pre-rendered requests, Content-Length responses
// only. It is an experiment for loadprof's CPU target (issue 2), not part of
// loadprof. Usage, against `loadprof sim --latency 0 --jitter 0`:
//
//	go run ./bench/compare/epollprobe PORT CONNECTIONS SECONDS
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: epollprobe PORT CONNECTIONS SECONDS")
		os.Exit(2)
	}
	port, _ := strconv.Atoi(os.Args[1])
	conns, _ := strconv.Atoi(os.Args[2])
	secs, _ := strconv.Atoi(os.Args[3])
	runtime.LockOSThread()
	body := `{"instances": [[1.0, 2.0, 3.0, 4.0]]}`
	req := []byte(fmt.Sprintf("POST /v1/models/test_model:predict HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", port, len(body), body))
	ep, _ := syscall.EpollCreate1(0)
	bufs := map[int][]byte{}
	sent := map[int]time.Time{}
	for i := 0; i < conns; i++ {
		fd, _ := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			panic(err)
		}
		syscall.SetNonblock(fd, true)
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
		bufs[fd] = make([]byte, 0, 4096)
		sent[fd] = time.Now()
		syscall.Write(fd, req)
	}
	events := make([]syscall.EpollEvent, 64)
	tmp := make([]byte, 16384)
	n := 0
	end := time.Now().Add(time.Duration(secs) * time.Second)
	var lat time.Duration
	for time.Now().Before(end) {
		k, err := syscall.EpollWait(ep, events, 100)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			panic(err)
		}
		for _, ev := range events[:k] {
			fd := int(ev.Fd)
			m, err := syscall.Read(fd, tmp)
			if err != nil || m <= 0 {
				continue
			}
			b := append(bufs[fd], tmp[:m]...)
			for {
				h := bytes.Index(b, []byte("\r\n\r\n"))
				if h < 0 {
					break
				}
				cl := 0
				if i := bytes.Index(b[:h], []byte("Content-Length: ")); i >= 0 {
					j := bytes.IndexByte(b[i:h+2], '\r')
					cl, _ = strconv.Atoi(string(b[i+16 : i+j]))
				}
				if len(b) < h+4+cl {
					break
				}
				b = b[h+4+cl:]
				n++
				now := time.Now()
				lat += now.Sub(sent[fd])
				sent[fd] = now
				syscall.Write(fd, req)
			}
			bufs[fd] = append(bufs[fd][:0], b...)
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Printf("epoll prototype: %d requests, %.0f/s, user %.2fs sys %.2fs, %.2f us/request (user %.2f)\n", n, float64(n)/float64(secs),
		float64(ru.Utime.Nano())/1e9, float64(ru.Stime.Nano())/1e9, float64(cpu.Microseconds())/float64(n), float64(ru.Utime.Nano())/1e3/float64(n))
}
