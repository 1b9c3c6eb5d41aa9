package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/console"
	"klab.dev/klab/broker/membership"
	"klab.dev/klab/cmd/klab/internal/brokerproc"
)

// TestClusterConsoleControlsTheBrokers runs three `klab broker` processes
// as `klab cluster` does, with its console, and uses the console's
// classroom controls as the page's buttons do: kill a broker and start it
// again, pause one and resume it. Each time the console's view shows what
// happened: the process state, and the broker dead or alive.
func TestClusterConsoleControlsTheBrokers(t *testing.T) {
	bin := buildKlab(t)

	const n = 3
	addrs, err := membership.FreeLoopbackAddrs(3 * n)
	require.NoError(t, err)
	kafka, gossip, consoles := addrs[:n], addrs[n:2*n], addrs[2*n:]
	dir := t.TempDir()
	args := make([][]string, n)
	for i := range n {
		args[i] = []string{"broker", "--id", strconv.Itoa(i + 1), "--listen", kafka[i], "--gossip", gossip[i],
			"--seeds", strings.Join(gossip, ","), "--dir", filepath.Join(dir, "broker-"+strconv.Itoa(i+1)), "--console", consoles[i]}
	}
	procs := brokerproc.New(bin, args)
	for i := range n {
		_, err := procs.Start(int32(i + 1))
		require.NoError(t, err)
	}
	t.Cleanup(func() { procs.StopAll(15 * time.Second) })
	url, stop, err := serveClusterConsole("127.0.0.1:0", consoles, procs, false)
	require.NoError(t, err)
	t.Cleanup(stop)

	client := &http.Client{Timeout: 5 * time.Second}
	view := func() (console.Cluster, error) {
		resp, err := client.Get(url + "api/cluster")
		if err != nil {
			return console.Cluster{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return console.Cluster{}, fmt.Errorf("%s", resp.Status)
		}
		var c console.Cluster
		return c, json.NewDecoder(resp.Body).Decode(&c)
	}
	waitView := func(what string, ok func(console.Cluster) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		var last console.Cluster
		var lastErr error
		for time.Now().Before(deadline) {
			c, err := view()
			if err == nil && ok(c) {
				return
			}
			last, lastErr = c, err
			time.Sleep(100 * time.Millisecond) // polling the console
		}
		t.Fatalf("the console never showed %s; last view %+v, error %v", what, last, lastErr)
	}
	alive := func(c console.Cluster, id int32) bool {
		for _, b := range c.Brokers {
			if b.ID == id {
				return b.Alive
			}
		}
		return false
	}
	act := func(id int, action string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%sapi/brokers/%d/%s", url, id, action), nil)
		req.Header.Set("X-Klab-Control", "1")
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusNoContent, resp.StatusCode, "%s broker %d", action, id)
	}

	waitView("three brokers alive", func(c console.Cluster) bool {
		return alive(c, 1) && alive(c, 2) && alive(c, 3) && c.Processes[2] == "running"
	})
	act(2, "kill")
	waitView("broker 2 stopped and dead", func(c console.Cluster) bool { return c.Processes[2] == "stopped" && !alive(c, 2) })
	act(2, "start")
	waitView("broker 2 running and alive again", func(c console.Cluster) bool { return c.Processes[2] == "running" && alive(c, 2) })
	act(3, "pause")
	waitView("broker 3 paused, and taken for dead", func(c console.Cluster) bool { return c.Processes[3] == "paused" && !alive(c, 3) })
	act(3, "resume")
	waitView("broker 3 running and alive again", func(c console.Cluster) bool { return c.Processes[3] == "running" && alive(c, 3) })
}
