package controller

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStreamsWaitForRaftsHandlers: raft's handler of an accepted
// connection outlives raft's Shutdown, and may write to the store (a
// heartbeat's term) until it returns; wait, which Close calls before
// closing the store, returns only once every handler has let go of its
// connection. Closing the store first made raft panic: "failed to save
// current term: raftstore: store is closed".
func TestStreamsWaitForRaftsHandlers(t *testing.T) {
	s := newStreams("127.0.0.1:0", nil)
	a, b := net.Pipe()
	defer b.Close()
	go s.deliver(a)
	c, err := s.Accept()
	require.NoError(t, err)

	finish := make(chan struct{})
	go func() { // raft's handler: reads until its connection closes, finishes a heartbeat, and closes it
		c.Read(make([]byte, 1))
		<-finish
		c.Close()
	}()
	waited := make(chan struct{})
	go func() { s.wait(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("wait returned while a handler still held its connection")
	case <-time.After(100 * time.Millisecond):
	}
	close(finish)
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not return once the handler let go")
	}
	_, err = s.Accept()
	require.ErrorIs(t, err, net.ErrClosed)
}
