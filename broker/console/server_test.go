package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// controls records the actions asked of it.
type controls struct {
	mu   sync.Mutex
	acts []string
}

func (c *controls) Act(id int32, action string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if action == "explode" {
		return errors.New("unknown action")
	}
	c.acts = append(c.acts, action)
	return nil
}

func (c *controls) Processes() map[int32]string { return map[int32]string{1: "running"} }

func TestEventsSendAViewWhenTheClusterChanges(t *testing.T) {
	var offset atomic.Uint64
	offset.Store(1)
	srv := httptest.NewServer(Handler(Options{
		Snapshot: func(context.Context) (Cluster, error) { return Cluster{MetadataOffset: offset.Load()}, nil },
		Interval: 20 * time.Millisecond,
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events := bufio.NewScanner(resp.Body)
	next := func() Cluster {
		t.Helper()
		for events.Scan() {
			if data, ok := strings.CutPrefix(events.Text(), "data: "); ok {
				var c Cluster
				require.NoError(t, json.Unmarshal([]byte(data), &c))
				return c
			}
		}
		t.Fatalf("the stream ended: %v", events.Err())
		return Cluster{}
	}
	assert.Equal(t, uint64(1), next().MetadataOffset, "a view as soon as the page connects")
	offset.Store(2)
	assert.Equal(t, uint64(2), next().MetadataOffset, "and one when the cluster changed; none in between")
}

func TestControlsRefuseOtherOrigins(t *testing.T) {
	ctl := &controls{}
	srv := httptest.NewServer(Handler(Options{Snapshot: func(context.Context) (Cluster, error) { return Cluster{}, nil }, Controls: ctl}))
	defer srv.Close()
	post := func(path string, header map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusForbidden, post("/api/brokers/1/kill", nil), "a plain form POST from any page")
	assert.Equal(t, http.StatusForbidden, post("/api/brokers/1/kill", map[string]string{"X-Klab-Control": "1", "Origin": "http://evil.example"}))
	assert.Equal(t, http.StatusBadRequest, post("/api/brokers/x/kill", map[string]string{"X-Klab-Control": "1"}))
	assert.Equal(t, http.StatusConflict, post("/api/brokers/1/explode", map[string]string{"X-Klab-Control": "1"}))
	assert.Equal(t, http.StatusNoContent, post("/api/brokers/1/kill", map[string]string{"X-Klab-Control": "1", "Origin": srv.URL}))
	assert.Equal(t, []string{"kill"}, ctl.acts)

	var c Cluster
	require.NoError(t, getJSON(context.Background(), http.DefaultClient, srv.URL+"/api/cluster", &c))
	assert.Equal(t, map[int32]string{1: "running"}, c.Processes, "the page learns it may offer the controls")
}

func TestNoControlsUnlessGiven(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{Snapshot: func(context.Context) (Cluster, error) { return Cluster{}, nil }}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/brokers/1/kill", nil)
	req.Header.Set("X-Klab-Control", "1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEqual(t, http.StatusNoContent, resp.StatusCode)
	for _, path := range []string{"/api/local", "/metrics"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
}

func TestPageAndAssetsAreEmbedded(t *testing.T) {
	srv := httptest.NewServer(Handler(Options{Snapshot: func(context.Context) (Cluster, error) { return Cluster{}, nil }}))
	defer srv.Close()
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
}

func TestFromConsolesAsksTheNextWhenOneIsDown(t *testing.T) {
	up := httptest.NewServer(Handler(Options{Snapshot: func(context.Context) (Cluster, error) { return Cluster{Served: 2}, nil }}))
	defer up.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // its address now refuses connections
	snapshot := FromConsoles(func() []string {
		return []string{strings.TrimPrefix(down.URL, "http://"), strings.TrimPrefix(up.URL, "http://")}
	}, http.DefaultClient)
	for range 2 { // and again: the one that answered first now
		c, err := snapshot(context.Background())
		require.NoError(t, err)
		assert.Equal(t, int32(2), c.Served)
	}

	none := FromConsoles(func() []string { return []string{strings.TrimPrefix(down.URL, "http://")} }, http.DefaultClient)
	_, err := none(context.Background())
	assert.ErrorContains(t, err, "no broker's console answers")
}

// A page of another site that renamed itself to 127.0.0.1 (DNS rebinding)
// still names itself in Host: it can neither read the view nor act.
func TestRequestsNamingAnotherHostAreRefused(t *testing.T) {
	ctl := &controls{}
	srv := httptest.NewServer(Handler(Options{Snapshot: func(context.Context) (Cluster, error) { return Cluster{}, nil }, Controls: ctl, Hosts: []string{"classroom"}}))
	defer srv.Close()
	do := func(method, path, host string) int {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Host = host
		req.Header.Set("X-Klab-Control", "1")
		req.Header.Set("Origin", "http://"+host)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusMisdirectedRequest, do(http.MethodPost, "/api/brokers/1/kill", "evil.example:48090"))
	assert.Equal(t, http.StatusMisdirectedRequest, do(http.MethodGet, "/api/cluster", "evil.example:48090"))
	assert.Empty(t, ctl.acts)
	assert.Equal(t, http.StatusOK, do(http.MethodGet, "/api/cluster", "localhost:48090"))
	assert.Equal(t, http.StatusOK, do(http.MethodGet, "/api/cluster", "classroom:48090"))
	assert.Equal(t, http.StatusOK, do(http.MethodGet, "/api/cluster", "[::1]:48090"))
	assert.Equal(t, http.StatusNoContent, do(http.MethodPost, "/api/brokers/1/kill", "127.0.0.1:48090"))
}

// A page that leaves while the view is made leaves no error to the others.
func TestAViewIsNotSpoiledByAPageThatLeft(t *testing.T) {
	srv := &server{o: Options{Interval: time.Hour, Snapshot: func(ctx context.Context) (Cluster, error) {
		return Cluster{Served: 1}, ctx.Err()
	}}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := srv.snapshot(ctx)
	require.NoError(t, err)
	c, err := srv.snapshot(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int32(1), c.Served)
}
