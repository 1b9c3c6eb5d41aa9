package membership

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRecheckSeesACrashBeforeTheWatchDoes: a client that saw a broker's
// connections break and its listener refuse may ask another broker about
// it before that broker's watch goroutine has run. Recheck looks at the
// held connection itself: when it returns, the crashed broker is out of
// Alive. A broker whose connection is fine stays.
func TestRecheckSeesACrashBeforeTheWatchDoes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	watcher, err := Join(Config{Self: Member{ID: 1, Addr: "127.0.0.1:9001"}, Gossip: "127.0.0.1:0"})
	require.NoError(t, err)
	defer watcher.Close()
	watched, err := Join(Config{Self: Member{ID: 2, Addr: ln.Addr().String(), Incarnation: 3}, Gossip: "127.0.0.1:0", Seeds: []string{watcher.Addr()}})
	require.NoError(t, err)
	defer watched.Close()
	// The watch holds its connection (it has been accepted, in this life).
	require.Eventually(t, func() bool {
		watcher.mu.Lock()
		w := watcher.watches[2]
		watcher.mu.Unlock()
		return w != nil && w.conn.Load() != nil
	}, 10*time.Second, time.Millisecond)
	held := <-accepted

	ctx := context.Background()
	require.False(t, watcher.Recheck(ctx, []int32{2, 1, 42}), "an open connection, this broker itself and an unknown id prove nothing")
	require.Contains(t, watcher.Alive(), int32(2))

	// The crash: the listener closes and the kernel closes the process's
	// connections. The watch's goroutine is woken, but need not have run.
	ln.Close()
	held.Close()
	watcher.Recheck(ctx, []int32{2})
	require.NotContains(t, watcher.Alive(), int32(2), "out of Alive when Recheck returns")
}
