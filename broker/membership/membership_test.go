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
