package membership

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRecheckSeesACrashBeforeTheWatchDoes: a client that saw a broker's
// connection break may ask another broker about it before that broker's
// own connection to it has broken. Recheck dials the listener itself:
// when it returns, the crashed broker is out of Alive. A broker whose
// listener accepts stays.
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
		return w != nil && w.accepted.Load()
	}, 10*time.Second, time.Millisecond)
	held := <-accepted

	ctx := context.Background()
	require.False(t, watcher.Recheck(ctx, []int32{2, 1, 42}), "an open connection, this broker itself and an unknown id prove nothing")
	require.Contains(t, watcher.Alive(), int32(2))

	// The crash, as the kernel tears a process down: the listener closes
	// first; the held connection is not closed yet.
	ln.Close()
	defer held.Close()
	require.True(t, watcher.Recheck(ctx, []int32{2}))
	require.NotContains(t, watcher.Alive(), int32(2), "out of Alive when Recheck returns")
}
