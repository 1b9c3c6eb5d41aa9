package faultnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// long bounds every wait for something that should happen: generous, so
// a slow machine under -race does not fail, but a test still fails rather
// than hangs when it does not happen.
const long = 5 * time.Second

// short is how long a test watches for something that should NOT happen.
// It cannot prove a negative, only make it unlikely to be missed.
const short = 100 * time.Millisecond

// listen starts a TCP listener on loopback owned by nd, wrapped by it, and
// returns the wrapped listener and a channel of the connections it
// accepts. The listener is closed when the test ends.
func listen(t *testing.T, nd *Node) (net.Listener, <-chan net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nd.Own(raw.Addr().String())
	ln := nd.Listener(raw)
	accepted := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})
	return ln, accepted
}

// dial dials addr from nd and fails the test if it cannot.
func dial(t *testing.T, nd *Node, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	c, err := nd.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("node %d dial %s: %v", nd.ID(), addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// accept waits for the next accepted connection.
func accept(t *testing.T, accepted <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		return c
	case <-time.After(long):
		t.Fatal("no connection accepted")
		return nil
	}
}

// result is what a Read or Write run in a goroutine came back with.
type result struct {
	n   int
	err error
	buf []byte
}

// readAsync reads up to size bytes from c in a goroutine.
func readAsync(c net.Conn, size int) <-chan result {
	ch := make(chan result, 1)
	go func() {
		buf := make([]byte, size)
		n, err := io.ReadFull(c, buf)
		ch <- result{n, err, buf[:n]}
	}()
	return ch
}

// writeAsync writes b to c in a goroutine.
func writeAsync(c net.Conn, b []byte) <-chan result {
	ch := make(chan result, 1)
	go func() {
		n, err := c.Write(b)
		ch <- result{n: n, err: err}
	}()
	return ch
}

// within waits for a result, failing the test if none comes in time.
func within(t *testing.T, what string, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(long):
		t.Fatalf("%s: no result within %v", what, long)
		return result{}
	}
}

// notYet fails the test if a result arrives within short.
func notYet(t *testing.T, what string, ch <-chan result) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned while it should stall: n=%d err=%v", what, r.n, r.err)
	case <-time.After(short):
	}
}

// roundTrip checks that bytes written at one end arrive at the other.
func roundTrip(t *testing.T, from, to net.Conn) {
	t.Helper()
	msg := []byte("ping")
	got := readAsync(to, len(msg))
	if _, err := from.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	r := within(t, "read", got)
	if r.err != nil || string(r.buf) != "ping" {
		t.Fatalf("read %q, %v; want %q", r.buf, r.err, msg)
	}
}

func TestDialCutHeal(t *testing.T) {
	network := New()
	n1, n2 := network.Node(1), network.Node(2)
	ln, accepted := listen(t, n2)
	addr := ln.Addr().String()

	c := dial(t, n1, addr)
	s := accept(t, accepted)
	roundTrip(t, c, s)
	roundTrip(t, s, c)

	// A Read already waiting when the link is cut must fail promptly,
	// naming the cut.
	pending := readAsync(c, 1)
	network.Cut(2, 1) // the order of the ends does not matter
	r := within(t, "read across cut", pending)
	if !errors.Is(r.err, errLinkCut) {
		t.Errorf("read after cut: %v, want %v", r.err, errLinkCut)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, errLinkCut) {
		t.Errorf("write after cut: %v, want %v", err, errLinkCut)
	}
	// The accepting end sees the connection closed.
	if r := within(t, "accepted end read", readAsync(s, 1)); r.err == nil {
		t.Error("accepted end read succeeded after cut")
	}

	if _, err := n1.Dial(context.Background(), "tcp", addr); !errors.Is(err, errLinkCut) {
		t.Errorf("dial across cut: %v, want %v", err, errLinkCut)
	}

	network.Heal()
	c2 := dial(t, n1, addr)
	s2 := accept(t, accepted)
	roundTrip(t, c2, s2)

	// Closing twice is harmless, for a cut connection and a live one.
	for _, conn := range []net.Conn{c, c2} {
		if err := conn.Close(); err != nil {
			t.Errorf("first close: %v", err)
		}
		if err := conn.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
	}
}

func TestDialToUnownedAddressIsNeverCut(t *testing.T) {
	network := New()
	n1 := network.Node(1)
	network.Node(2)
	raw, err := net.Listen("tcp", "127.0.0.1:0") // owned by no node
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	network.Isolate(1)
	c := dial(t, n1, raw.Addr().String())
	s, err := raw.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	roundTrip(t, c, s)
}

func TestPauseStallsUntilResume(t *testing.T) {
	network := New()
	n1, n2 := network.Node(1), network.Node(2)
	ln, accepted := listen(t, n2)
	c := dial(t, n1, ln.Addr().String())
	s := accept(t, accepted)
	roundTrip(t, c, s)

	network.Pause(2)
	if network.Reachable(1, 2) {
		t.Error("Reachable(1, 2) with 2 paused")
	}
	// Node 1's write to the paused node 2 does not leave, and node 2
	// reads nothing, until 2 resumes.
	wrote := writeAsync(c, []byte("hello"))
	read := readAsync(s, 5)
	notYet(t, "write to paused node", wrote)
	notYet(t, "read on paused node", read)

	network.Resume(2)
	if w := within(t, "write after resume", wrote); w.err != nil || w.n != 5 {
		t.Fatalf("write after resume: %d, %v", w.n, w.err)
	}
	if r := within(t, "read after resume", read); r.err != nil || string(r.buf) != "hello" {
		t.Fatalf("read after resume: %q, %v", r.buf, r.err)
	}
	roundTrip(t, s, c)
}

func TestPausedReadHonoursDeadline(t *testing.T) {
	network := New()
	n1, n2 := network.Node(1), network.Node(2)
	ln, accepted := listen(t, n2)
	c := dial(t, n1, ln.Addr().String())
	s := accept(t, accepted)

	network.Pause(2)
	// Data is waiting for node 2 (written beneath the wrapper, which
	// would stall the write), but a paused node does not read it.
	if _, err := c.(*conn).Conn.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		conn net.Conn
	}{{"accepted end of paused node", s}, {"dialed end to paused node", c}} {
		start := time.Now()
		if err := tc.conn.SetReadDeadline(start.Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		r := within(t, tc.name, readAsync(tc.conn, 1))
		if !errors.Is(r.err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: read error %v, want %v", tc.name, r.err, os.ErrDeadlineExceeded)
		}
		var ne net.Error
		if !errors.As(r.err, &ne) || !ne.Timeout() {
			t.Errorf("%s: read error %v is not a net.Error timeout", tc.name, r.err)
		}
		if time.Since(start) < 40*time.Millisecond {
			t.Errorf("%s: read returned before its deadline", tc.name)
		}
	}

	// A deadline moved into the past wakes a stalled Write at once.
	_ = c.SetWriteDeadline(time.Time{})
	wrote := writeAsync(c, []byte("y"))
	notYet(t, "write to paused node", wrote)
	_ = c.SetWriteDeadline(time.Unix(1, 0))
	if w := within(t, "write after deadline moved", wrote); !errors.Is(w.err, os.ErrDeadlineExceeded) {
		t.Errorf("write: %v, want %v", w.err, os.ErrDeadlineExceeded)
	}

	// Resuming lets reads through again, once the deadline is lifted.
	_ = s.SetReadDeadline(time.Time{})
	network.Resume(2)
	if r := within(t, "read after resume", readAsync(s, 1)); r.err != nil || string(r.buf) != "x" {
		t.Errorf("read after resume: %q, %v", r.buf, r.err)
	}
}

func TestCloseWakesStalledRead(t *testing.T) {
	network := New()
	n1, n2 := network.Node(1), network.Node(2)
	ln, accepted := listen(t, n2)
	c := dial(t, n1, ln.Addr().String())
	accept(t, accepted)

	network.Pause(1)
	read := readAsync(c, 1)
	notYet(t, "read on paused node", read)
	c.Close()
	if r := within(t, "read after close", read); !errors.Is(r.err, net.ErrClosed) {
		t.Errorf("read after close: %v, want %v", r.err, net.ErrClosed)
	}
}

func TestCutClosesStalledConnection(t *testing.T) {
	network := New()
	n1, n2 := network.Node(1), network.Node(2)
	ln, accepted := listen(t, n2)
	c := dial(t, n1, ln.Addr().String())
	accept(t, accepted)

	network.Pause(2)
	wrote := writeAsync(c, []byte("x"))
	notYet(t, "write to paused node", wrote)
	network.Cut(1, 2)
	if w := within(t, "write after cut", wrote); !errors.Is(w.err, errLinkCut) {
		t.Errorf("write after cut: %v, want %v", w.err, errLinkCut)
	}
}

func TestIsolateAndReachable(t *testing.T) {
	network := New()
	n1, n2, n3 := network.Node(1), network.Node(2), network.Node(3)
	if network.Node(3) != n3 {
		t.Fatal("Node(3) returned a second node")
	}
	ln, _ := listen(t, n3)

	reach := func(want map[[2]int32]bool) {
		t.Helper()
		for pair, ok := range want {
			if got := network.Reachable(pair[0], pair[1]); got != ok {
				t.Errorf("Reachable(%d, %d) = %v, want %v", pair[0], pair[1], got, ok)
			}
			if got := network.Reachable(pair[1], pair[0]); got != ok {
				t.Errorf("Reachable(%d, %d) = %v, want %v", pair[1], pair[0], got, ok)
			}
		}
	}
	reach(map[[2]int32]bool{{1, 2}: true, {1, 3}: true, {2, 3}: true})

	c := dial(t, n1, ln.Addr().String())
	network.Isolate(3)
	reach(map[[2]int32]bool{{1, 2}: true, {1, 3}: false, {2, 3}: false})
	if r := within(t, "read across isolation", readAsync(c, 1)); !errors.Is(r.err, errLinkCut) {
		t.Errorf("read across isolation: %v, want %v", r.err, errLinkCut)
	}
	if _, err := n2.Dial(context.Background(), "tcp", ln.Addr().String()); !errors.Is(err, errLinkCut) {
		t.Errorf("dial to isolated node: %v, want %v", err, errLinkCut)
	}

	network.Heal()
	reach(map[[2]int32]bool{{1, 2}: true, {1, 3}: true, {2, 3}: true})

	network.Isolate(1, 2) // only the link 1-2
	reach(map[[2]int32]bool{{1, 2}: false, {1, 3}: true, {2, 3}: true})
	network.Heal()

	network.Pause(1)
	reach(map[[2]int32]bool{{1, 2}: false, {1, 3}: false, {2, 3}: true})
	network.Heal() // does not resume
	reach(map[[2]int32]bool{{1, 2}: false, {2, 3}: true})
	network.Resume(1)
	reach(map[[2]int32]bool{{1, 2}: true, {1, 3}: true, {2, 3}: true})
}

// newTransport starts a memberlist NetTransport on loopback, wraps it for
// nd and makes nd own its address.
func newTransport(t *testing.T, nd *Node) (memberlist.Transport, *memberlist.NetTransport, string) {
	t.Helper()
	inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		BindPort:  0,
		Logger:    log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", inner.GetAutoBindPort())
	nd.Own(addr)
	tr := nd.Transport(inner)
	t.Cleanup(func() {
		if err := tr.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return tr, inner, addr
}

// expectPacket waits for a packet carrying want on ch.
func expectPacket(t *testing.T, ch <-chan *memberlist.Packet, want string) {
	t.Helper()
	select {
	case p := <-ch:
		if string(p.Buf) != want {
			t.Fatalf("packet %q, want %q", p.Buf, want)
		}
	case <-time.After(long):
		t.Fatalf("packet %q not delivered", want)
	}
}

// expectNoPacket fails if a packet arrives on ch within 200ms.
func expectNoPacket(t *testing.T, ch <-chan *memberlist.Packet, what string) {
	t.Helper()
	select {
	case p := <-ch:
		t.Fatalf("%s: packet %q delivered", what, p.Buf)
	case <-time.After(2 * short):
	}
}

func TestTransportPackets(t *testing.T) {
	network := New()
	t1, inner1, _ := newTransport(t, network.Node(1))
	t2, _, addr2 := newTransport(t, network.Node(2))

	send := func(msg string) {
		t.Helper()
		if _, err := t1.WriteTo([]byte(msg), addr2); err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
	}

	send("before")
	expectPacket(t, t2.PacketCh(), "before")

	network.Cut(1, 2)
	send("cut") // dropped, yet WriteTo reports success
	expectNoPacket(t, t2.PacketCh(), "across a cut")
	// A packet from an unwrapped sender is dropped on arrival too.
	if _, err := inner1.WriteTo([]byte("cut, unwrapped"), addr2); err != nil {
		t.Fatal(err)
	}
	expectNoPacket(t, t2.PacketCh(), "unwrapped sender across a cut")

	network.Heal()
	send("healed")
	expectPacket(t, t2.PacketCh(), "healed")

	network.Pause(2)
	send("to paused")
	expectNoPacket(t, t2.PacketCh(), "to a paused node")
	network.Resume(2)
	network.Pause(1)
	send("from paused")
	expectNoPacket(t, t2.PacketCh(), "from a paused node")
	network.Resume(1)
	send("resumed")
	expectPacket(t, t2.PacketCh(), "resumed")
}

func TestTransportStreams(t *testing.T) {
	network := New()
	t1, _, _ := newTransport(t, network.Node(1))
	t2, _, addr2 := newTransport(t, network.Node(2))

	c, err := t1.DialTimeout(addr2, long)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var s net.Conn
	select {
	case s = <-t2.StreamCh():
	case <-time.After(long):
		t.Fatal("no stream arrived")
	}
	defer s.Close()
	roundTrip(t, c, s)

	// An arriving stream stalls while its node is paused.
	network.Pause(2)
	read := readAsync(s, 4)
	// Written beneath the wrapper, which would stall the write.
	if _, err := c.(*conn).Conn.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	notYet(t, "stream read on paused node", read)
	network.Resume(2)
	if r := within(t, "stream read after resume", read); r.err != nil || string(r.buf) != "late" {
		t.Fatalf("stream read after resume: %q, %v", r.buf, r.err)
	}

	network.Cut(1, 2)
	if r := within(t, "stream read after cut", readAsync(c, 1)); !errors.Is(r.err, errLinkCut) {
		t.Errorf("stream read after cut: %v, want %v", r.err, errLinkCut)
	}
	if _, err := t1.DialTimeout(addr2, long); !errors.Is(err, errLinkCut) {
		t.Errorf("DialTimeout across cut: %v, want %v", err, errLinkCut)
	}
}

// TestTransportShutdownWithUnreadPacket checks that Shutdown returns even
// when nobody reads PacketCh while packets are still arriving: the relay
// holds one and the inner transport's listener another.
func TestTransportShutdownWithUnreadPacket(t *testing.T) {
	network := New()
	t1, _, _ := newTransport(t, network.Node(1))
	inner2, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"},
		Logger:    log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	addr2 := fmt.Sprintf("127.0.0.1:%d", inner2.GetAutoBindPort())
	network.Node(2).Own(addr2)
	t2 := network.Node(2).Transport(inner2)
	for i := range 3 {
		if _, err := t1.WriteTo([]byte{byte(i)}, addr2); err != nil {
			t.Fatal(err)
		}
	}
	// Reading the first packet shows the others are on their way; they
	// are left unread.
	expectPacket(t, t2.PacketCh(), "\x00")
	done := make(chan error, 1)
	go func() { done <- t2.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(long):
		t.Fatal("Shutdown hung")
	}
}

// waitFor waits until cond holds, looking again at each membership
// event memberlist reports on events, and fails the test after long.
func waitFor(t *testing.T, what string, events <-chan memberlist.NodeEvent, cond func() bool) {
	t.Helper()
	timeout := time.After(long)
	for !cond() {
		select {
		case <-events:
		case <-timeout:
			t.Fatalf("%s: not within %v", what, long)
		}
	}
}

// alive reports whether m considers the node named name alive.
func alive(m *memberlist.Memberlist, name string) bool {
	for _, n := range m.Members() {
		if n.Name == name {
			return true
		}
	}
	return false
}

func TestMemberlistIsolateAndHeal(t *testing.T) {
	network := New()
	var members []*memberlist.Memberlist
	var events []chan memberlist.NodeEvent
	var addrs []string
	for id := int32(1); id <= 3; id++ {
		tr, _, addr := newTransport(t, network.Node(id))
		conf := memberlist.DefaultLocalConfig()
		conf.Name = fmt.Sprintf("n%d", id)
		conf.Transport = tr
		conf.ProbeInterval = 100 * time.Millisecond
		conf.ProbeTimeout = 50 * time.Millisecond
		conf.SuspicionMult = 1
		conf.GossipInterval = 50 * time.Millisecond
		// Push/pull is memberlist's anti-entropy: it repairs views that
		// gossip alone leaves inconsistent after a partition, such as
		// a refutation that arrived before the rumour it refutes. Its
		// default of 15s would make the heal below slow and flaky.
		conf.PushPullInterval = 200 * time.Millisecond
		conf.LogOutput = io.Discard
		// memberlist blocks on a full event channel, so leave room for
		// far more events than three nodes joining and leaving make.
		ev := make(chan memberlist.NodeEvent, 1024)
		conf.Events = &memberlist.ChannelEventDelegate{Ch: ev}
		m, err := memberlist.Create(conf)
		if err != nil {
			t.Fatal(err)
		}
		// Registered after newTransport's cleanup, so it runs before it:
		// the memberlist shuts its transport down, and shutting it down
		// again in the transport's cleanup is harmless.
		t.Cleanup(func() { m.Shutdown() })
		members = append(members, m)
		events = append(events, ev)
		addrs = append(addrs, addr)
	}
	if _, err := members[1].Join(addrs[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := members[2].Join(addrs[:1]); err != nil {
		t.Fatal(err)
	}
	for i, m := range members {
		waitFor(t, fmt.Sprintf("n%d sees 3 members", i+1), events[i], func() bool { return m.NumMembers() == 3 })
	}

	network.Isolate(3)
	for i, m := range members[:2] {
		waitFor(t, m.LocalNode().Name+" marks n3 dead", events[i], func() bool { return !alive(m, "n3") })
	}
	if !alive(members[0], "n2") || !alive(members[1], "n1") {
		t.Error("n1 and n2 lost each other when only n3 was isolated")
	}

	network.Heal()
	// Healing the network may not be enough on its own. n3 may by now
	// have declared n1 and n2 dead too, and memberlist only pushes and
	// pulls state with nodes it thinks alive: if each side has given the
	// other up, neither speaks to the other again. Serf (and so Consul)
	// rejoins failed members periodically for this reason; a cluster
	// built on memberlist needs the same, and here n3 does it once.
	if _, err := members[2].Join(addrs[:2]); err != nil {
		t.Fatalf("n3 rejoin after heal: %v", err)
	}
	for i, m := range members {
		waitFor(t, m.LocalNode().Name+" sees 3 alive after heal", events[i], func() bool { return m.NumMembers() == 3 })
	}
}
