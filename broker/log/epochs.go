package log

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// epochFile is where a log keeps its leader epochs, named as Kafka names it.
const epochFile = "leader-epoch-checkpoint"

// EpochStart is one entry of a log's leader epoch cache: from offset
// StartOffset on, records were written by the leader of epoch Epoch.
type EpochStart struct {
	Epoch       int32
	StartOffset int64
}

// epochCache is the leader epoch cache of KIP-101: for each leader epoch the
// log has records of, the offset of its first record. A follower that comes
// back asks the leader where its last epoch ends, and cuts its log there:
// that, not the high watermark, is what keeps replicas from diverging.
//
// On disk it is Kafka's text format: a version line (0), a count line,
// then "epoch start-offset" a line. It is small and rewritten whole.
type epochCache struct {
	path    string
	entries []EpochStart // by epoch and start offset, both increasing
}

func loadEpochs(dir string) (*epochCache, error) {
	c := &epochCache{path: filepath.Join(dir, epochFile)}
	data, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if line <= 2 || text == "" { // the version and the count
			continue
		}
		f := strings.Fields(text)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s line %d: want \"epoch offset\", got %q", c.path, line, text)
		}
		epoch, err1 := strconv.ParseInt(f[0], 10, 32)
		start, err2 := strconv.ParseInt(f[1], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", c.path, line, err)
		}
		c.entries = append(c.entries, EpochStart{int32(epoch), start})
	}
	return c, sc.Err()
}

func (c *epochCache) save() error {
	var b strings.Builder
	fmt.Fprintf(&b, "0\n%d\n", len(c.entries))
	for _, e := range c.entries {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return writeAtomic(c.path, []byte(b.String()))
}

// writeAtomic replaces a file so that a crash leaves the old content or the
// new, never a mix: a temporary file, synced, renamed over.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := writeSynced(tmp, data); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// latest is the newest epoch, or -1 for a log with none.
func (c *epochCache) latest() int32 {
	if len(c.entries) == 0 {
		return -1
	}
	return c.entries[len(c.entries)-1].Epoch
}

// assign records that epoch starts at offset, if epoch is newer than any
// the cache has. An older or equal epoch changes nothing.
func (c *epochCache) assign(epoch int32, offset int64) error {
	if epoch < 0 || epoch <= c.latest() {
		return nil
	}
	c.entries = append(c.entries, EpochStart{epoch, offset})
	return c.save()
}

// truncateFrom forgets epochs that start at or after offset, after the log
// was cut there.
func (c *epochCache) truncateFrom(offset int64) error {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].StartOffset >= offset {
		n--
	}
	if n == len(c.entries) {
		return nil
	}
	c.entries = c.entries[:n]
	return c.save()
}

// keep forgets every entry after the first n: those an append added, when
// the append is undone.
func (c *epochCache) keep(n int) error {
	if n >= len(c.entries) {
		return nil
	}
	c.entries = c.entries[:n]
	return c.save()
}

// endOffsetFor answers OffsetForLeaderEpoch (KIP-279): the largest epoch at
// or below epoch that the log has, and the offset where it ends, which is
// where the next epoch starts, or endOffset for the latest one. An epoch
// older than any the log knows is (-1, -1).
func (c *epochCache) endOffsetFor(epoch int32, endOffset int64) (int32, int64) {
	for i := len(c.entries) - 1; i >= 0; i-- {
		if c.entries[i].Epoch > epoch {
			continue
		}
		if i == len(c.entries)-1 {
			return c.entries[i].Epoch, endOffset
		}
		return c.entries[i].Epoch, c.entries[i+1].StartOffset
	}
	return -1, -1
}
