package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"klab.dev/klab/broker/console"
	"klab.dev/klab/cmd/klab/internal/brokerproc"
)

// serveClusterConsole serves `klab cluster`'s own console at addr: the view
// of whichever broker's console answers (so the page lives on whichever
// broker dies) and, on loopback or when the user asks (allowControls), the
// classroom controls over the processes. It returns the page's URL and a
// function that stops it.
func serveClusterConsole(addr string, brokerConsoles []string, procs *brokerproc.Cluster, allowControls bool) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("console on %s: %w (another klab cluster running? --console host:port picks another)", addr, err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	o := console.Options{Snapshot: console.FromConsoles(func() []string { return brokerConsoles }, client)}
	if allowControls || isLoopback(ln.Addr()) {
		o.Controls = procs
	}
	srv := &http.Server{Handler: console.Handler(o), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("[console] stopped: %v\n", err)
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close() // the event streams of open pages do not end by themselves
	}
	url := "http://" + ln.Addr().String() + "/"
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host, _ := os.Hostname()
		url = fmt.Sprintf("http://%s/ (on every interface)", net.JoinHostPort(host, strconv.Itoa(tcp.Port)))
	}
	return url, stop, nil
}

// isLoopback reports whether a listener's address is a loopback one: only
// there does the console offer controls without being asked.
func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
