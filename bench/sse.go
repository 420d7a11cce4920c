package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"time"
)

// lateEvent is how late an event may arrive before it counts as late: about
// one frame of a terminal redraw.
const lateEvent = 12 * time.Millisecond

// sse opens event streams the way an agent does: a few workers, each with
// its own keep-alive client, each sending a stream request and then a small
// GET, several times. It records how long each event took from the
// upstream's write to the client's read, the time to the first event, how
// often a request after a stream needed a new connection, and how long that
// request took.
func (c *client) sse() error {
	p := c.spec.Plan
	u := c.url(c.spec.Known, "/sse?n="+strconv.Itoa(p.SSEEvents)+"&delay="+p.SSEDelay.String())
	type out struct {
		delays, ttfb, after []float64
		late, afterNew, n   int
		err                 error
	}
	results := make([]out, p.SSEWorkers)
	var wg sync.WaitGroup
	for w := range p.SSEWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &results[w]
			t := c.transport(true)
			defer t.CloseIdleConnections()
			for range p.SSEStreams {
				delays, ttfb, err := c.stream(t, u)
				if err != nil {
					o.err = err
					return
				}
				o.delays = append(o.delays, delays...)
				o.ttfb = append(o.ttfb, ttfb)
				for _, d := range delays {
					if d > ms(lateEvent) {
						o.late++
					}
				}
				reused := false
				trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
				req := c.request(httptrace.WithClientTrace(context.Background(), trace), "GET", c.url(c.spec.Known, "/small"), nil, 0)
				start := time.Now()
				if err := do(t, req); err != nil {
					o.err = err
					return
				}
				o.after = append(o.after, ms(time.Since(start)))
				o.n++
				if !reused {
					o.afterNew++
				}
			}
		}()
	}
	wg.Wait()
	var delays, ttfb, after []float64
	late, afterNew, n := 0, 0, 0
	for _, o := range results {
		if o.err != nil {
			return o.err
		}
		delays = append(delays, o.delays...)
		ttfb = append(ttfb, o.ttfb...)
		after = append(after, o.after...)
		late += o.late
		afterNew += o.afterNew
		n += o.n
	}
	c.set("sse_delay_p50_ms", quantile(delays, 0.5))
	c.set("sse_delay_p99_ms", quantile(delays, 0.99))
	c.set("sse_delay_max_ms", quantile(delays, 1))
	c.set("sse_late_events", float64(late))
	c.set("sse_ttfb_p50_ms", quantile(ttfb, 0.5))
	c.set("sse_after_get_p50_ms", quantile(after, 0.5))
	c.set("sse_after_newconn_frac", float64(afterNew)/float64(max(1, n)))
	return nil
}

// stream reads one event stream, returning each event's delay and the
// time to the first event, both in ms.
func (c *client) stream(t http.RoundTripper, u string) ([]float64, float64, error) {
	start := time.Now()
	res, err := t.RoundTrip(c.request(context.Background(), "GET", u, nil, 0))
	if err != nil {
		return nil, 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("sse: status %d", res.StatusCode)
	}
	var delays []float64
	var ttfb float64
	br := bufio.NewReader(res.Body)
	for {
		line, err := br.ReadSlice('\n')
		now := time.Now()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		var ev struct{ T int64 }
		if err := json.Unmarshal(data, &ev); err != nil {
			return nil, 0, fmt.Errorf("sse: bad event %q: %w", data, err)
		}
		if len(delays) == 0 {
			ttfb = ms(now.Sub(start))
		}
		delays = append(delays, ms(now.Sub(time.Unix(0, ev.T))))
	}
	if len(delays) != c.spec.Plan.SSEEvents {
		return nil, 0, fmt.Errorf("sse: got %d events, want %d", len(delays), c.spec.Plan.SSEEvents)
	}
	return delays, ttfb, nil
}
