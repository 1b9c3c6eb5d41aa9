package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"klab.dev/klab/broker/membership"
	"klab.dev/klab/broker/metadata"
)

//go:embed static
var static embed.FS

// Source is what a broker lends its console.
type Source interface {
	ID() int32
	Metadata() *metadata.Image
	Alive() map[int32]membership.Member
	ActiveController() int32
	Local() Local
}

// Controls stop, pause and start the brokers of `klab cluster`: the
// classroom's buttons. Only the console of `klab cluster` has them, for
// the processes it started.
type Controls interface {
	// Act applies an action to broker id: "stop" (SIGTERM: a controlled
	// shutdown), "kill" (SIGKILL: a crash), "pause" (SIGSTOP: alive but
	// silent, as in a long GC pause), "resume" (SIGCONT), "start".
	Act(id int32, action string) error
	// Processes is each broker process's state: "running", "paused" or
	// "stopped".
	Processes() map[int32]string
}

// Options says what a console serves.
type Options struct {
	// Snapshot returns the cluster's view. Required.
	Snapshot func(ctx context.Context) (Cluster, error)
	// Local, on a broker, is what it knows of itself, for the other
	// brokers' consoles (/api/local).
	Local func() Local
	// Metrics, if set, is served at /metrics.
	Metrics http.Handler
	// Controls, if set, are offered on the page and served at
	// POST /api/brokers/{id}/{action}.
	Controls Controls
	// Interval is how often the page is sent a new view when the cluster
	// changed; default 500ms.
	Interval time.Duration
	// Hosts are host names, besides IP addresses, localhost and the
	// machine's own name, that requests may name in their Host header
	// (checkHost says why).
	Hosts []string
}

// Handler is the console: the page, its API and, if given, /metrics.
func Handler(o Options) http.Handler {
	if o.Interval <= 0 {
		o.Interval = 500 * time.Millisecond
	}
	s := &server{o: o}
	mux := http.NewServeMux()
	assets, _ := fs.Sub(static, "static")
	mux.Handle("GET /", http.FileServerFS(assets))
	mux.HandleFunc("GET /api/cluster", s.cluster)
	mux.HandleFunc("GET /api/events", s.events)
	if o.Local != nil {
		mux.HandleFunc("GET /api/local", s.local)
	}
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	if o.Controls != nil {
		mux.HandleFunc("POST /api/brokers/{id}/{action}", s.act)
	}
	hosts := o.Hosts
	if name, err := os.Hostname(); err == nil {
		hosts = append(slices.Clone(hosts), name)
	}
	return checkHost(mux, hosts)
}

// checkHost refuses a request whose Host names neither an IP address,
// localhost, nor one of hosts. A page of another site can rename itself to
// 127.0.0.1 after it loaded (DNS rebinding) and then read this console, or
// press its buttons, as if it were the console's own page; its requests
// still carry its own name in Host, and are refused here.
func checkHost(next http.Handler, hosts []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		host = strings.Trim(host, "[]")
		if net.ParseIP(host) == nil && host != "localhost" && !strings.HasSuffix(host, ".localhost") && !slices.Contains(hosts, host) {
			http.Error(w, "this console answers to its address, localhost or an IP address, not "+r.Host, http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type server struct {
	o Options

	// One view serves every page open at the same moment: ten students'
	// browsers cost the cluster one round of /api/local, not ten.
	// gathering lets one request at a time make a new view (the others
	// wait for it and take it); mu guards the view, never held while one
	// is made, so that a control is not held up by a slow broker.
	gathering sync.Mutex
	mu        sync.Mutex
	last      Cluster
	lastErr   error
	lastAt    time.Time
}

// gatherTimeout bounds the making of a view.
const gatherTimeout = 3 * time.Second

// snapshot returns a view at most half an interval old.
func (s *server) snapshot(ctx context.Context) (Cluster, error) {
	fresh := func() (Cluster, error, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.last, s.lastErr, time.Since(s.lastAt) < s.o.Interval/2
	}
	if c, err, ok := fresh(); ok {
		return c, err
	}
	s.gathering.Lock()
	defer s.gathering.Unlock()
	if c, err, ok := fresh(); ok { // made while this one waited
		return c, err
	}
	// The view is everyone's: a page that leaves while it is made must
	// not leave the others an error.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), gatherTimeout)
	defer cancel()
	c, err := s.o.Snapshot(ctx)
	if err == nil && s.o.Controls != nil {
		c.Processes = s.o.Controls.Processes()
	}
	s.mu.Lock()
	s.last, s.lastErr, s.lastAt = c, err, time.Now()
	s.mu.Unlock()
	return c, err
}

func (s *server) cluster(w http.ResponseWriter, r *http.Request) {
	c, err := s.snapshot(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, c)
}

func (s *server) local(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.o.Local())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// events streams the view as server-sent events: one when the page
// connects, then one each interval in which something changed, and a
// comment every 15 s so that proxies keep the stream open. The browser's
// EventSource reconnects by itself if the stream breaks.
func (s *server) events(w http.ResponseWriter, r *http.Request) {
	// A page that stops reading must not pin this handler: each write
	// has a deadline, and a missed one ends the stream.
	rc := http.NewResponseController(w)
	send := func(msg string) error {
		if err := rc.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return err
		}
		if _, err := io.WriteString(w, msg); err != nil {
			return err
		}
		return rc.Flush()
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	tick := time.NewTicker(s.o.Interval)
	defer tick.Stop()
	var sent []byte
	quiet := time.Now()
	for {
		c, err := s.snapshot(r.Context())
		var msg []byte
		if err != nil {
			msg, _ = json.Marshal(map[string]string{"error": err.Error()})
		} else {
			c.Time = time.Time{} // compare views without their time
			msg, _ = json.Marshal(c)
		}
		switch {
		case !bytes.Equal(msg, sent):
			if err := send("data: " + string(msg) + "\n\n"); err != nil {
				return
			}
			sent, quiet = msg, time.Now()
		case time.Since(quiet) > 15*time.Second:
			if err := send(": still here\n\n"); err != nil {
				return
			}
			quiet = time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// act carries out a classroom control. Another web site open in the same
// browser could send a POST to a loopback address too (a form needs no
// permission): a control must carry the X-Klab-Control header, which
// a page of another origin cannot add without the browser asking this
// server first (a CORS preflight it never approves), and any Origin it
// names must be this console's own.
func (s *server) act(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Klab-Control") == "" {
		http.Error(w, "a control needs the X-Klab-Control header", http.StatusForbidden)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && origin != "http://"+r.Host {
		http.Error(w, "a control must come from the console's own page", http.StatusForbidden)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 32)
	if err != nil {
		http.Error(w, "bad broker id", http.StatusBadRequest)
		return
	}
	if err := s.o.Controls.Act(int32(id), r.PathValue("action")); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	s.mu.Lock()
	s.lastAt = time.Time{} // the next view shows the change
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// localTimeout bounds how long a console waits for another broker's
// /api/local: a dead broker must not hold the page back.
const localTimeout = 700 * time.Millisecond

// Gather is a broker's Snapshot: its own Local, every other live broker's
// from its console, put together with its metadata.
func Gather(ctx context.Context, src Source, client *http.Client) (Cluster, error) {
	im := src.Metadata()
	alive := src.Alive()
	self := src.ID()
	locals := map[int32]Local{self: src.Local()}
	unreachable := map[int32]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, m := range alive {
		if id == self {
			continue
		}
		if m.Console == "" {
			unreachable[id] = "serves no console"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := fetchLocal(ctx, client, m.Console)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				unreachable[id] = err.Error()
				return
			}
			locals[id] = l
		}()
	}
	wg.Wait()
	return Assemble(im, alive, src.ActiveController(), self, locals, unreachable), nil
}

func fetchLocal(ctx context.Context, client *http.Client, addr string) (Local, error) {
	ctx, cancel := context.WithTimeout(ctx, localTimeout)
	defer cancel()
	var l Local
	err := getJSON(ctx, client, "http://"+addr+"/api/local", &l)
	return l, err
}

// FromConsoles is the Snapshot of a console that is no broker (`klab
// cluster`'s): the view of the first broker console in addrs that answers,
// so that the page lives on whichever broker dies. The one that answered
// last is asked first: a paused broker would cost each view a time-out.
func FromConsoles(addrs func() []string, client *http.Client) func(ctx context.Context) (Cluster, error) {
	var last atomic.Value // string: the console that answered last
	return func(ctx context.Context) (Cluster, error) {
		order := addrs()
		if l, ok := last.Load().(string); ok {
			if i := slices.Index(order, l); i > 0 {
				order = append([]string{l}, slices.Delete(slices.Clone(order), i, i+1)...)
			}
		}
		var errs []error
		for _, addr := range order {
			ctx, cancel := context.WithTimeout(ctx, 2*localTimeout)
			var c Cluster
			err := getJSON(ctx, client, "http://"+addr+"/api/cluster", &c)
			cancel()
			if err == nil {
				last.Store(addr)
				return c, nil
			}
			errs = append(errs, err)
		}
		return Cluster{}, fmt.Errorf("no broker's console answers: %w", errors.Join(errs...))
	}
}

func getJSON(ctx context.Context, client *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	// A view of a big cluster is large, but not this large: a confused
	// peer cannot make this console take all its memory.
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v)
}
