package testkit

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/loadprof/loadprof/sim"
)

// CountingScrape is a metrics endpoint in front of a simulator's that notes
// what the simulator had counted around each scrape (the page is rendered
// between the two readings): a test can then hold the server figures of a
// window between two scrapes to the simulator's own count, whenever those
// scrapes happened on a busy machine.
type CountingScrape struct {
	URL string // the endpoint: the simulator's metrics path on a server of the test's

	srv *sim.Server
	mu  sync.Mutex
	at  [][2]int64
}

// NewCountingScrape starts a CountingScrape for srv, stopped when the test
// ends.
func NewCountingScrape(tb testing.TB, srv *sim.Server) *CountingScrape {
	tb.Helper()
	c := &CountingScrape{srv: srv}
	page := httptest.NewServer(c)
	tb.Cleanup(page.Close)
	c.URL = page.URL + sim.MetricsPath
	return c
}

func (c *CountingScrape) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	before, _ := c.srv.PredictLatency()
	resp, err := http.Get(c.srv.MetricsURL())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	after, _ := c.srv.PredictLatency()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	c.mu.Lock()
	c.at = append(c.at, [2]int64{before, after})
	c.mu.Unlock()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	_, _ = w.Write(page)
}

// Between is what the simulator counted between scrapes from and to (in
// the order they were served): at least low, at most high; the two are
// equal when no call ended while either page was being rendered.
func (c *CountingScrape) Between(tb testing.TB, from, to int) (low, high int64) {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if from < 0 || to >= len(c.at) || from > to {
		tb.Fatalf("scrapes %d to %d of %d", from, to, len(c.at))
	}
	open, closed := c.at[from], c.at[to]
	return closed[0] - open[1], closed[1] - open[0]
}
