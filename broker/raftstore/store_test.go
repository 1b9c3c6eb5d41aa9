package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// testLog returns an entry with every field set, each derived from the index
// so that a mix-up between entries shows up as a difference.
func testLog(index uint64) *raft.Log {
	// A zone that is not UTC and not a whole hour, to check the offset
	// survives the round trip.
	zone := time.FixedZone("test", 5*3600+30*60)
	return &raft.Log{
		Index:      index,
		Term:       1 + index/4,
		Type:       raft.LogType(index % 6),
		Data:       fmt.Appendf(nil, "data %d", index),
		Extensions: fmt.Appendf(nil, "ext %d", index),
		AppendedAt: time.Date(2025, 3, 1, 12, 0, 0, int(index), zone),
	}
}

// testLogs returns testLog(i) for i from first to last.
func testLogs(first, last uint64) []*raft.Log {
	var logs []*raft.Log
	for i := first; i <= last; i++ {
		logs = append(logs, testLog(i))
	}
	return logs
}

// openStore opens dir and closes the store when the test ends. Close is
// idempotent, so tests may also close it themselves to reopen the directory.
func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopen closes s and opens its directory again, which is how every test
// checks that what it wrote actually reached the files.
func reopen(t testing.TB, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openStore(t, s.dir)
}

func storeLogs(t testing.TB, s *Store, logs []*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs: %v", err)
	}
}

// checkLogs fails the test unless s holds exactly want, in order.
func checkLogs(t testing.TB, s *Store, want []*raft.Log) {
	t.Helper()
	var wantFirst, wantLast uint64
	if len(want) > 0 {
		wantFirst, wantLast = want[0].Index, want[len(want)-1].Index
	}
	first, err := s.FirstIndex()
	if err != nil || first != wantFirst {
		t.Fatalf("FirstIndex = %d, %v; want %d", first, err, wantFirst)
	}
	last, err := s.LastIndex()
	if err != nil || last != wantLast {
		t.Fatalf("LastIndex = %d, %v; want %d", last, err, wantLast)
	}
	for _, w := range want {
		var got raft.Log
		if err := s.GetLog(w.Index, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", w.Index, err)
		}
		// cmp compares AppendedAt with time.Time.Equal, which ignores the
		// monotonic clock reading that does not survive a file.
		if diff := cmp.Diff(*w, got); diff != "" {
			t.Fatalf("GetLog(%d) mismatch (-want +got):\n%s", w.Index, diff)
		}
	}
	// Just outside the stored range there must be nothing.
	for _, i := range []uint64{wantFirst - 1, wantLast + 1} {
		var got raft.Log
		if err := s.GetLog(i, &got); !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) = %v, want raft.ErrLogNotFound", i, err)
		}
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestLogRoundTripAcrossReopen(t *testing.T) {
	s := openStore(t, t.TempDir())
	checkLogs(t, s, nil) // a fresh store is empty

	want := testLogs(1, 8)
	// An entry with every field at its zero value, like the LogNoop raft
	// writes, must come back as zero values too.
	want = append(want, &raft.Log{Index: 9, Term: 3, Type: raft.LogNoop})
	// An entry the way raft stamps it: AppendedAt from time.Now (with a
	// monotonic reading and the local zone), and a large payload.
	want = append(want, &raft.Log{
		Index:      10,
		Term:       3,
		Type:       raft.LogCommand,
		Data:       bytes.Repeat([]byte("x"), 100_000),
		AppendedAt: time.Now(),
	})

	// Store in two calls, to cover both StoreLogs and StoreLog.
	storeLogs(t, s, want[:9])
	if err := s.StoreLog(want[9]); err != nil {
		t.Fatalf("StoreLog: %v", err)
	}
	checkLogs(t, s, want)

	// The store must keep its own copy: changing what raft passed in, or
	// what GetLog handed out, must not change the stored entry.
	want[0].Data[0] = '!'
	var got raft.Log
	if err := s.GetLog(1, &got); err != nil {
		t.Fatal(err)
	}
	got.Data[1] = '!'
	want[0] = testLog(1)
	checkLogs(t, s, want)

	s = reopen(t, s)
	checkLogs(t, s, want)
}

func TestDeleteRangePrefixAndSuffix(t *testing.T) {
	s := openStore(t, t.TempDir())
	storeLogs(t, s, testLogs(1, 20))

	// A prefix, as raft removes after a snapshot.
	if err := s.DeleteRange(1, 5); err != nil {
		t.Fatalf("DeleteRange prefix: %v", err)
	}
	checkLogs(t, s, testLogs(6, 20))

	// A suffix, as a follower removes entries that conflict with the
	// leader's log...
	if err := s.DeleteRange(16, 20); err != nil {
		t.Fatalf("DeleteRange suffix: %v", err)
	}
	checkLogs(t, s, testLogs(6, 15))

	// ...before storing the leader's entries in their place. These differ
	// from the deleted ones (another term), so if the old ones came back
	// after reopening the test would see it.
	replacement := testLogs(16, 25)
	for _, l := range replacement {
		l.Term = 99
	}
	storeLogs(t, s, replacement)
	want := append(testLogs(6, 15), replacement...)
	checkLogs(t, s, want)

	s = reopen(t, s)
	checkLogs(t, s, want)

	// A range strictly inside the log would leave a gap.
	if err := s.DeleteRange(10, 12); err == nil {
		t.Fatal("DeleteRange in the middle succeeded, want an error")
	}
	checkLogs(t, s, want)

	// A range reaching past both ends deletes everything, as raft does when
	// recovering a cluster. An empty store then accepts any first index,
	// because after a snapshot the log carries on from the snapshot.
	if err := s.DeleteRange(1, 1000); err != nil {
		t.Fatalf("DeleteRange all: %v", err)
	}
	checkLogs(t, s, nil)
	storeLogs(t, s, testLogs(100, 102))
	s = reopen(t, s)
	checkLogs(t, s, testLogs(100, 102))
}

func TestStoreLogsRejectsGaps(t *testing.T) {
	s := openStore(t, t.TempDir())
	if err := s.StoreLog(testLog(0)); err == nil {
		t.Fatal("StoreLog(index 0) succeeded, want an error")
	}
	storeLogs(t, s, testLogs(1, 3))

	bad := map[string][]*raft.Log{
		"gap before the batch": {testLog(5)},
		"gap inside the batch": {testLog(4), testLog(6)},
		"index already stored": {testLog(3)},
	}
	for name, logs := range bad {
		if err := s.StoreLogs(logs); err == nil {
			t.Errorf("%s: StoreLogs succeeded, want an error", name)
		}
	}
	// A refused batch leaves nothing behind, not even its good first half.
	checkLogs(t, s, testLogs(1, 3))
	s = reopen(t, s)
	checkLogs(t, s, testLogs(1, 3))

	storeLogs(t, s, testLogs(4, 4))
	checkLogs(t, s, testLogs(1, 4))
}

func TestTornTailRepaired(t *testing.T) {
	tests := []struct {
		name string
		// damage changes the log file, which holds entries 1 to 5;
		// size4 is the file's size when it held only entries 1 to 4.
		damage   func(t *testing.T, path string, size4, size5 int64)
		wantLast uint64
	}{
		{
			name: "garbage appended",
			damage: func(t *testing.T, path string, size4, size5 int64) {
				appendFile(t, path, []byte("\x00\x00\x00\x20half a record that never made it"))
			},
			wantLast: 5,
		},
		{
			// Some filesystems show a zero-filled tail after a crash.
			name: "zeros appended",
			damage: func(t *testing.T, path string, size4, size5 int64) {
				appendFile(t, path, make([]byte, 4096))
			},
			wantLast: 5,
		},
		{
			name: "last record cut in half",
			damage: func(t *testing.T, path string, size4, size5 int64) {
				truncate(t, path, size4+(size5-size4)/2)
			},
			wantLast: 4,
		},
		{
			name: "last record cut inside its header",
			damage: func(t *testing.T, path string, size4, size5 int64) {
				truncate(t, path, size4+3)
			},
			wantLast: 4,
		},
		{
			name: "last record corrupted",
			damage: func(t *testing.T, path string, size4, size5 int64) {
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				data[len(data)-1] ^= 0xff // fails the checksum
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantLast: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, logFileName)
			s := openStore(t, dir)
			storeLogs(t, s, testLogs(1, 4))
			size4 := fileSize(t, path)
			storeLogs(t, s, testLogs(5, 5))
			size5 := fileSize(t, path)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			tt.damage(t, path, size4, size5)

			s = openStore(t, dir)
			checkLogs(t, s, testLogs(1, tt.wantLast))
			// The tail must be gone from the file itself, or the next
			// append would land behind it and be lost on the next Open.
			wantSize := size4
			if tt.wantLast == 5 {
				wantSize = size5
			}
			if got := fileSize(t, path); got != wantSize {
				t.Fatalf("log file is %d bytes after Open, want %d", got, wantSize)
			}

			// The repaired store accepts new entries, and keeps them.
			storeLogs(t, s, testLogs(tt.wantLast+1, 8))
			s = reopen(t, s)
			checkLogs(t, s, testLogs(1, 8))
		})
	}
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsCheckedButInconsistentLog(t *testing.T) {
	// Two records with valid checksums but a gap between their indexes is
	// not something a crash produces, so Open must not quietly drop the
	// second one.
	dir := t.TempDir()
	data := encodeLogs(t, []*raft.Log{testLog(1), testLog(3)})
	if err := os.WriteFile(filepath.Join(dir, logFileName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(dir); err == nil {
		s.Close()
		t.Fatal("Open succeeded, want an error")
	}
}

// encodeLogs returns the bytes a log file holding logs would contain.
func encodeLogs(t testing.TB, logs []*raft.Log) []byte {
	t.Helper()
	var data []byte
	for _, l := range logs {
		payload, err := appendLogPayload(nil, l)
		if err != nil {
			t.Fatal(err)
		}
		data = appendRecord(data, payload)
	}
	return data
}

func TestStableStoreAcrossReopen(t *testing.T) {
	s := openStore(t, t.TempDir())

	// Missing keys: raft recognises "no value yet" by the error's message.
	if val, err := s.Get([]byte("LastVoteCand")); val != nil || err == nil || err.Error() != "not found" {
		t.Fatalf("Get(missing) = %q, %v; want nil, \"not found\"", val, err)
	}
	if val, err := s.GetUint64([]byte("CurrentTerm")); val != 0 || err == nil || err.Error() != "not found" {
		t.Fatalf("GetUint64(missing) = %d, %v; want 0, \"not found\"", val, err)
	}
	// Raft's own check for a fresh node reads CurrentTerm that way.
	if has, err := raft.HasExistingState(s, s, raft.NewInmemSnapshotStore()); has || err != nil {
		t.Fatalf("HasExistingState on a fresh store = %v, %v; want false, nil", has, err)
	}

	set := func(key, val string) {
		t.Helper()
		if err := s.Set([]byte(key), []byte(val)); err != nil {
			t.Fatalf("Set(%q): %v", key, err)
		}
	}
	setUint64 := func(key string, val uint64) {
		t.Helper()
		if err := s.SetUint64([]byte(key), val); err != nil {
			t.Fatalf("SetUint64(%q): %v", key, err)
		}
	}
	set("LastVoteCand", "node-a")
	set("LastVoteCand", "node-b") // the later value wins
	set("empty", "")
	setUint64("CurrentTerm", 7)
	setUint64("CurrentTerm", 8)
	setUint64("LastVoteTerm", 1<<60)

	check := func(s *Store) {
		t.Helper()
		if val, err := s.Get([]byte("LastVoteCand")); err != nil || string(val) != "node-b" {
			t.Fatalf("Get(LastVoteCand) = %q, %v; want \"node-b\"", val, err)
		}
		// A key set to an empty value is present, so it must not come back
		// as nil: raft compares the vote candidate with nil.
		if val, err := s.Get([]byte("empty")); err != nil || val == nil || len(val) != 0 {
			t.Fatalf("Get(empty) = %#v, %v; want an empty non-nil slice", val, err)
		}
		if val, err := s.GetUint64([]byte("CurrentTerm")); err != nil || val != 8 {
			t.Fatalf("GetUint64(CurrentTerm) = %d, %v; want 8", val, err)
		}
		if val, err := s.GetUint64([]byte("LastVoteTerm")); err != nil || val != 1<<60 {
			t.Fatalf("GetUint64(LastVoteTerm) = %d, %v; want 1<<60", val, err)
		}
		if _, err := s.Get([]byte("never set")); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("Get(never set) = %v, want ErrKeyNotFound", err)
		}
		// A value that is not 8 bytes is an error, but not "not found":
		// raft must not mistake it for a missing term.
		if _, err := s.GetUint64([]byte("LastVoteCand")); err == nil || errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("GetUint64 of a 6-byte value = %v, want an error other than not found", err)
		}
	}
	check(s)

	// The caller owns what Get returns.
	val, _ := s.Get([]byte("LastVoteCand"))
	val[0] = '!'
	check(s)

	s = reopen(t, s)
	check(s)
	if has, err := raft.HasExistingState(s, s, raft.NewInmemSnapshotStore()); !has || err != nil {
		t.Fatalf("HasExistingState with a term set = %v, %v; want true, nil", has, err)
	}
}

func TestClosedStoreRefusesUse(t *testing.T) {
	s := openStore(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.StoreLog(testLog(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("StoreLog after Close = %v, want ErrClosed", err)
	}
	if err := s.Set([]byte("k"), []byte("v")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close = %v, want ErrClosed", err)
	}
	if _, err := s.LastIndex(); !errors.Is(err, ErrClosed) {
		t.Fatalf("LastIndex after Close = %v, want ErrClosed", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	// Run with -race: readers and a writer share the store the way raft's
	// goroutines do.
	s := openStore(t, t.TempDir())
	const last = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := uint64(1); i <= last; i += 10 {
			if err := s.StoreLogs(testLogs(i, i+9)); err != nil {
				t.Errorf("StoreLogs: %v", err)
				return
			}
			if err := s.SetUint64([]byte("CurrentTerm"), i); err != nil {
				t.Errorf("SetUint64: %v", err)
				return
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for {
				n, err := s.LastIndex()
				if err != nil {
					t.Errorf("LastIndex: %v", err)
					return
				}
				if n > 0 {
					var l raft.Log
					if err := s.GetLog(n, &l); err != nil || l.Index != n {
						t.Errorf("GetLog(%d) = %d, %v", n, l.Index, err)
						return
					}
				}
				s.GetUint64([]byte("CurrentTerm"))
				if n == last {
					return
				}
			}
		})
	}
	wg.Wait()
	checkLogs(t, s, testLogs(1, last))
}

// countingFSM is a raft.FSM whose whole state is the number of commands it
// has applied.
type countingFSM struct {
	mu      sync.Mutex
	applied uint64
}

func (f *countingFSM) Apply(*raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied++
	return f.applied
}

func (f *countingFSM) count() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) {
	return countSnapshot(f.count()), nil
}

func (f *countingFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var buf [8]byte
	if _, err := io.ReadFull(rc, buf[:]); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = binary.BigEndian.Uint64(buf[:])
	return nil
}

// countSnapshot is a countingFSM's state at the time of a snapshot.
type countSnapshot uint64

func (c countSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(binary.BigEndian.AppendUint64(nil, uint64(c))); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (countSnapshot) Release() {}

// startRaft starts a single-node raft on store, with a fresh FSM, and waits
// until it is leader. bootstrap is for the first start only; a restart finds
// the cluster configuration in the log.
func startRaft(t *testing.T, store *Store, snaps raft.SnapshotStore, bootstrap bool) (*raft.Raft, *countingFSM) {
	t.Helper()
	conf := raft.DefaultConfig()
	conf.LocalID = "node1"
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.TrailingLogs = 10 // so a snapshot really does delete a prefix
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Off})

	// A fixed address, so the one in the bootstrapped configuration still
	// names this node after a restart.
	addr, trans := raft.NewInmemTransport("node1")
	fsm := &countingFSM{}
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
	if err != nil {
		t.Fatalf("NewRaft: %v", err)
	}
	// Shutdown is idempotent; this catches tests that fail half way.
	t.Cleanup(func() { r.Shutdown() })

	if bootstrap {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}
		if err := r.BootstrapCluster(cfg).Error(); err != nil {
			t.Fatalf("BootstrapCluster: %v", err)
		}
	}

	deadline := time.After(10 * time.Second)
	for leader := false; !leader; {
		select {
		case leader = <-r.LeaderCh():
		case <-deadline:
			t.Fatalf("no leadership after 10s, state %v", r.State())
		}
	}
	return r, fsm
}

func shutdown(t *testing.T, r *raft.Raft) {
	t.Helper()
	if err := r.Shutdown().Error(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// applyCommands applies n commands and waits until the FSM has applied each.
func applyCommands(t *testing.T, r *raft.Raft, n int) {
	t.Helper()
	futures := make([]raft.ApplyFuture, n)
	for i := range futures {
		futures[i] = r.Apply(fmt.Appendf(nil, "cmd %d", i), 5*time.Second)
	}
	for i, f := range futures {
		if err := f.Error(); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
	}
}

// waitApplied waits until the FSM has applied every committed entry (a
// barrier is applied after everything before it) and checks the count.
func waitApplied(t *testing.T, r *raft.Raft, fsm *countingFSM, want uint64) {
	t.Helper()
	if err := r.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatalf("Barrier: %v", err)
	}
	if got := fsm.count(); got != want {
		t.Fatalf("FSM applied %d commands, want %d", got, want)
	}
}

func TestRaftReplaysLogAfterRestart(t *testing.T) {
	dir := t.TempDir()
	store := openStore(t, dir)
	snaps := raft.NewInmemSnapshotStore()

	r, fsm := startRaft(t, store, snaps, true)
	applyCommands(t, r, 100)
	waitApplied(t, r, fsm, 100)
	shutdown(t, r)

	// Check the files themselves hold the commands, in order, before raft
	// gets a chance to read them.
	store = reopen(t, store)
	first, _ := store.FirstIndex()
	last, _ := store.LastIndex()
	var commands int
	for i := first; i <= last; i++ {
		var l raft.Log
		if err := store.GetLog(i, &l); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		if l.Type != raft.LogCommand {
			continue // the bootstrap configuration and leader no-ops
		}
		if want := fmt.Sprintf("cmd %d", commands); string(l.Data) != want {
			t.Fatalf("command at index %d is %q, want %q", i, l.Data, want)
		}
		commands++
	}
	if commands != 100 {
		t.Fatalf("log holds %d commands, want 100", commands)
	}

	// A fresh raft with an empty FSM and no snapshot must rebuild the FSM
	// by replaying the committed log.
	r, fsm = startRaft(t, store, snaps, false)
	waitApplied(t, r, fsm, 100)
	shutdown(t, r)
}

func TestRaftSnapshotCompactsLog(t *testing.T) {
	dir := t.TempDir()
	store := openStore(t, filepath.Join(dir, "raft"))
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Off})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, "snapshots"), 2, logger)
	if err != nil {
		t.Fatal(err)
	}

	r, fsm := startRaft(t, store, snaps, true)
	applyCommands(t, r, 100)
	waitApplied(t, r, fsm, 100)
	lastBefore, _ := store.LastIndex()

	// A snapshot makes raft delete the log's prefix, keeping TrailingLogs
	// entries behind it.
	if err := r.Snapshot().Error(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	first, _ := store.FirstIndex()
	if first <= 1 {
		t.Fatalf("FirstIndex = %d after a snapshot, want the prefix deleted", first)
	}
	if last, _ := store.LastIndex(); last != lastBefore {
		t.Fatalf("LastIndex = %d after a snapshot, want %d", last, lastBefore)
	}
	shutdown(t, r)

	// After a restart raft restores the snapshot and carries on from the
	// compacted log.
	store = reopen(t, store)
	if got, _ := store.FirstIndex(); got != first {
		t.Fatalf("FirstIndex after reopen = %d, want %d", got, first)
	}
	r, fsm = startRaft(t, store, snaps, false)
	waitApplied(t, r, fsm, 100)
	applyCommands(t, r, 5)
	waitApplied(t, r, fsm, 105)
	shutdown(t, r)
}

func TestRaftRestoreLeavesNoGap(t *testing.T) {
	// Restoring a snapshot makes raft skip ahead: the next entry gets an
	// index past the snapshot, far beyond the log's last index. This store
	// refuses gaps, and says so through IsMonotonic, so raft must first
	// empty the log; otherwise the next Apply would fail.
	store := openStore(t, t.TempDir())
	snaps := raft.NewInmemSnapshotStore()
	r, fsm := startRaft(t, store, snaps, true)
	applyCommands(t, r, 10)

	const snapIndex = 1000
	state := binary.BigEndian.AppendUint64(nil, 50) // an FSM that has applied 50 commands
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: snapIndex, Term: 1, Size: int64(len(state))}
	if err := r.Restore(meta, bytes.NewReader(state), 5*time.Second); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	applyCommands(t, r, 5)
	waitApplied(t, r, fsm, 55)
	if first, _ := store.FirstIndex(); first <= snapIndex {
		t.Fatalf("FirstIndex = %d after restoring a snapshot at %d, want the old log gone", first, snapIndex)
	}
	shutdown(t, r)

	store = reopen(t, store)
	r, fsm = startRaft(t, store, snaps, false)
	waitApplied(t, r, fsm, 55)
	shutdown(t, r)
}

// FuzzOpen feeds arbitrary bytes to Open as the log file. Open may refuse
// them, but must never panic, and whatever it accepts must be a usable
// store: every entry readable, the file cut to a prefix of what it was, and
// new entries accepted and kept.
func FuzzOpen(f *testing.F) {
	valid := encodeLogs(f, testLogs(1, 3))
	f.Add([]byte{})
	f.Add(valid)
	f.Add(append(valid[:len(valid):len(valid)], "garbage"...))
	f.Add(valid[:len(valid)-7])
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, logFileName)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir)
		if err != nil {
			return // refusing is fine
		}
		defer s.Close()

		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		if (first == 0) != (last == 0) || first > last {
			t.Fatalf("FirstIndex %d, LastIndex %d", first, last)
		}
		for i := first; i != 0 && i <= last; i++ {
			var l raft.Log
			if err := s.GetLog(i, &l); err != nil {
				t.Fatalf("GetLog(%d): %v", i, err)
			}
		}
		repaired, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, repaired) {
			t.Fatal("repaired log file is not a prefix of the original")
		}

		if last == math.MaxUint64 {
			return // no index can follow; StoreLog refusing is right
		}
		next := last + 1
		if err := s.StoreLog(&raft.Log{Index: next, Term: 1}); err != nil {
			t.Fatalf("StoreLog(%d) after Open: %v", next, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(dir)
		if err != nil {
			t.Fatalf("reopening a repaired store: %v", err)
		}
		defer s.Close()
		if got, _ := s.LastIndex(); got != next {
			t.Fatalf("LastIndex after reopen = %d, want %d", got, next)
		}
	})
}
