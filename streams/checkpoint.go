package streams

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A checkpoint file says, for each changelog partition of a task's
// persistent stores, the offset its restore starts from: everything before
// it is in the store on disk. A task writes it after a commit has flushed
// its stores, and when it closes cleanly; a task that finds it restores
// only the changelog's records from there on — after a clean restart,
// none. It is written as Kafka writes its .checkpoint files: a version
// line (0), a count line, then "topic partition offset" lines.
const checkpointFile = ".checkpoint"

// changelogPartition names a changelog topic's partition.
type changelogPartition struct {
	Topic     string
	Partition int32
}

// readCheckpoint reads the checkpoint file in dir: no file is no
// checkpoint, and an empty map.
func readCheckpoint(dir string) (map[changelogPartition]int64, error) {
	out := map[changelogPartition]int64{}
	f, err := os.Open(filepath.Join(dir, checkpointFile))
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	bad := func(why string) error {
		return errorf("checkpoint %s: %s", filepath.Join(dir, checkpointFile), why)
	}
	if len(lines) < 2 || lines[0] != "0" {
		return nil, bad("not a version 0 checkpoint")
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n != len(lines)-2 {
		return nil, bad("its count line does not match its entries")
	}
	for _, line := range lines[2:] {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, bad(fmt.Sprintf("line %q", line))
		}
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		o, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || o < 0 {
			return nil, bad(fmt.Sprintf("line %q", line))
		}
		out[changelogPartition{f[0], int32(p)}] = o
	}
	return out, nil
}

// writeCheckpoint replaces the checkpoint file in dir with offsets, so
// that a crash leaves the old file or the new one, never half of one.
func writeCheckpoint(dir string, offsets map[changelogPartition]int64) error {
	var b strings.Builder
	fmt.Fprintf(&b, "0\n%d\n", len(offsets))
	for cp, o := range offsets {
		fmt.Fprintf(&b, "%s %d %d\n", cp.Topic, cp.Partition, o)
	}
	tmp := filepath.Join(dir, checkpointFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, checkpointFile))
}

//klab:lesson 13 begin restoreFrom

// restoreFrom reads the checkpoint file in taskDir and says where the
// restore of the persistent store whose changelog partition is cp begins,
// given the changelog's end offset: at the store's checkpoint, if it has
// one the changelog reaches. With none, what the store holds is of no
// known offset (the task never committed, or its checkpoint was lost),
// and with one past the changelog's end the changelog was deleted and
// made again: either way the store must be wiped and rebuilt from the
// changelog's start. (A crash after a commit leaves that commit's
// checkpoint: the store may then hold writes made after it, which the
// restore from the checkpoint writes again — harmless under at-least-once,
// as in Kafka's at-least-once mode.)
func restoreFrom(taskDir string, cp changelogPartition, end int64) (from int64, wipe bool, err error) {
	checkpoint, err := readCheckpoint(taskDir)
	if err != nil {
		return 0, false, err
	}
	offset, ok := checkpoint[cp]
	if !ok || offset > end {
		return 0, true, nil
	}
	return offset, false, nil
}

//klab:lesson 13 stub
// func restoreFrom(taskDir string, cp changelogPartition, end int64) (from int64, wipe bool, err error) {
// 	return 0, false, lessons.Todo("13", "restoreFrom")
// }
//klab:lesson 13 end
