package membership_test

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/membership"
)

func TestMembersFindEachOtherAndNoticeADeath(t *testing.T) {
	first, err := membership.Join(membership.Config{Self: membership.Member{ID: 1, Addr: "127.0.0.1:9001", Rack: "a"}, Gossip: "127.0.0.1:0"})
	require.NoError(t, err)
	defer first.Close()
	seeds := []string{first.Addr()}
	second, err := membership.Join(membership.Config{Self: membership.Member{ID: 2, Addr: "127.0.0.1:9002", Rack: "b"}, Gossip: "127.0.0.1:0", Seeds: seeds})
	require.NoError(t, err)
	defer second.Close()
	third, err := membership.Join(membership.Config{Self: membership.Member{ID: 3, Addr: "127.0.0.1:9003"}, Gossip: "127.0.0.1:0", Seeds: seeds})
	require.NoError(t, err)

	require.Eventually(t, func() bool { return len(first.Alive()) == 3 && len(second.Alive()) == 3 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, membership.Member{ID: 2, Addr: "127.0.0.1:9002", Rack: "b"}, first.Alive()[2], "the broker's metadata travels with it")

	changed := first.Changed()
	require.NoError(t, third.Kill()) // no goodbye: the others must notice
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no change noticed")
	}
	require.Eventually(t, func() bool {
		_, ok := first.Alive()[3]
		_, ok2 := second.Alive()[3]
		return !ok && !ok2
	}, 10*time.Second, 10*time.Millisecond)
}

// TestMembersGossipOnHeldSockets: a member given sockets bound in advance
// (HoldLoopback) gossips on them, with a member that binds its own, and
// closes them when it stops: the port is free again.
func TestMembersGossipOnHeldSockets(t *testing.T) {
	ln, pc, err := membership.HoldLoopback()
	require.NoError(t, err)
	addr := ln.Addr().String()
	first, err := membership.Join(membership.Config{Self: membership.Member{ID: 1, Addr: "127.0.0.1:9001"}, Gossip: addr, Listener: ln, PacketConn: pc})
	require.NoError(t, err)
	require.Equal(t, addr, first.Addr())
	second, err := membership.Join(membership.Config{Self: membership.Member{ID: 2, Addr: "127.0.0.1:9002"}, Gossip: "127.0.0.1:0", Seeds: []string{addr}})
	require.NoError(t, err)
	defer second.Close()
	require.Eventually(t, func() bool { return len(first.Alive()) == 2 && len(second.Alive()) == 2 }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, first.Close())
	ln2, err := net.Listen("tcp", addr)
	require.NoError(t, err, "the held TCP listener was closed")
	ln2.Close()
	pc2, err := net.ListenPacket("udp", addr)
	require.NoError(t, err, "the held UDP socket was closed")
	pc2.Close()
}

// TestAClosedListenerIsDeadAtOnce: a broker whose Kafka listener refuses
// connections, after it accepted one, is out of the others' Alive at once,
// while gossip still lists it (here it keeps gossiping: only the listener
// closes, as when a process dies and the kernel closes its sockets); and
// back once its listener accepts again in the same life.
func TestAClosedListenerIsDeadAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	accepted := make(chan net.Conn, 16)
	serve := func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}
	go serve(ln)

	watcher, err := membership.Join(membership.Config{Self: membership.Member{ID: 1, Addr: "127.0.0.1:9001"}, Gossip: "127.0.0.1:0"})
	require.NoError(t, err)
	defer watcher.Close()
	watched, err := membership.Join(membership.Config{Self: membership.Member{ID: 2, Addr: addr, Incarnation: 7}, Gossip: "127.0.0.1:0", Seeds: []string{watcher.Addr()}})
	require.NoError(t, err)
	defer watched.Close()
	require.Eventually(t, func() bool { return len(watcher.Alive()) == 2 }, 10*time.Second, 10*time.Millisecond)
	var held net.Conn
	select {
	case held = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher never connected to the listener")
	}

	changed := watcher.Changed()
	ln.Close()
	held.Close()
	start := time.Now()
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no change noticed")
	}
	_, alive := watcher.Alive()[2]
	require.False(t, alive, "a refusing listener is a dead broker")
	t.Logf("out of Alive %v after its listener closed", time.Since(start))
	require.Less(t, time.Since(start), time.Second, "at once, not after gossip's failure detection")

	ln2, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	defer ln2.Close()
	go serve(ln2)
	require.Eventually(t, func() bool { _, ok := watcher.Alive()[2]; return ok }, 10*time.Second, 10*time.Millisecond,
		"accepting again in the same life, it is alive again")
}
