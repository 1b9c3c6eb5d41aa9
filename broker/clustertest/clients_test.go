package clustertest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"klab.dev/klab/broker/clustertest"
)

// Real Kafka clients, with enable.idempotence=true, producing through the
// death of the partition's leader on a three-broker cluster: every record
// they were told is written is in the partition, once. librdkafka through
// kcat and through confluent-kafka (Python), as applications use it.

// need finds a program the test runs, or skips the test where it is not
// installed; CI installs them (.ci/run) and fails instead.
func need(t *testing.T, program, install string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run installs it with apt-get install -y %s", program, install)
		}
		t.Skipf("%s is not installed (apt-get install %s); CI runs this test", program, install)
	}
	return path
}

// leaderKill is the scenario both clients go through: a topic with one
// partition on brokers 1, 2 and 3, led by 1, min.insync.replicas=2. The
// client is fed lines on its standard input as fast as it reads them;
// when a quarter of them are in the partition, while the client is busy
// producing the rest, broker 1 is killed. Requests in flight then were
// written by the leader and, most of them, copied by the followers,
// without an answer: the client sends them again to the new leader.
type leaderKill struct {
	c     *clustertest.Cluster
	lines []string
}

func newLeaderKill(t *testing.T, n int) *leaderKill {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, minISR2)
	c.WaitFullISR("events", 0, 30*time.Second)
	lk := &leaderKill{c: c}
	for i := range n {
		lk.lines = append(lk.lines, fmt.Sprintf("r%06d", i))
	}
	return lk
}

// feed writes the lines to stdin from a goroutine, and kills the leader
// when a quarter of them are in the partition.
func (lk *leaderKill) feed(t *testing.T, stdin io.WriteCloser) {
	go func() {
		w := bufio.NewWriter(stdin)
		for _, l := range lk.lines {
			fmt.Fprintln(w, l)
		}
		w.Flush()
		stdin.Close()
	}()
	adm := kadm.NewClient(lk.c.Client())
	lk.c.WaitFor(30*time.Second, "a quarter of the records written", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, "events")
		if err != nil {
			return false
		}
		end, _ := ends.Lookup("events", 0)
		return end.Offset >= int64(len(lk.lines)/4)
	})
	lk.c.Kill(1)
}

// check reads the partition and checks that every acknowledged line is in
// it once, and that nothing else is.
func (lk *leaderKill) check(t *testing.T, acked []string) {
	lk.c.WaitLeader("events", 0, 30*time.Second, nil)
	count := map[string]int{}
	for _, r := range lk.c.ReadAll("events", 0) {
		count[string(r.Value)]++
	}
	var duplicates, missing []string
	for v, n := range count {
		if n > 1 {
			duplicates = append(duplicates, v)
		}
	}
	for _, v := range acked {
		if count[v] == 0 {
			missing = append(missing, v)
		}
	}
	assert.Empty(t, duplicates, "records written more than once")
	assert.Empty(t, missing, "acknowledged records missing")
	t.Logf("%d lines fed, %d acknowledged, %d distinct records read", len(lk.lines), len(acked), len(count))
}

func TestKcatIdempotentThroughALeaderKill(t *testing.T) {
	kcat := need(t, "kcat", "kcat")
	lk := newLeaderKill(t, 40000)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-P", "-b", strings.Join(lk.c.Addrs(), ","), "-t", "events", "-p", "0",
		"-X", "enable.idempotence=true", "-X", "linger.ms=5")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	lk.feed(t, stdin)
	require.NoError(t, cmd.Wait(), "kcat reports a record it could not deliver:\n%s", out.String())
	// kcat exits 0 only when every record was delivered: all are acknowledged.
	lk.check(t, lk.lines)
	require.Len(t, lk.c.ReadAll("events", 0), len(lk.lines))
}

// confluentProducer is a confluent-kafka application with the settings a
// user would write: enable.idempotence and nothing else. It produces each
// line of its standard input and prints, as JSON, the lines whose delivery
// was confirmed and the errors of those that failed.
const confluentProducer = `
import json, sys
from confluent_kafka import Producer

acked, failed = [], []
def report(err, msg):
    if err is None:
        acked.append(msg.value().decode())
    else:
        failed.append(str(err))

p = Producer({"bootstrap.servers": sys.argv[1], "enable.idempotence": True})
for line in sys.stdin:
    while True:
        try:
            p.produce("events", line.strip().encode(), partition=0, on_delivery=report)
            break
        except BufferError:
            p.poll(0.1)
    p.poll(0)
left = p.flush(60)
json.dump({"acked": acked, "failed": failed, "undelivered": left}, sys.stdout)
`

func TestConfluentKafkaIdempotentThroughALeaderKill(t *testing.T) {
	python := need(t, "/usr/bin/python3", "python3")
	if exec.Command(python, "-c", "import confluent_kafka").Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("confluent-kafka is not installed; .ci/run installs it with apt-get install -y python3-confluent-kafka")
		}
		t.Skip("confluent-kafka is not installed (apt-get install python3-confluent-kafka); CI runs this test")
	}
	script := filepath.Join(t.TempDir(), "produce.py")
	require.NoError(t, os.WriteFile(script, []byte(confluentProducer), 0o644))
	lk := newLeaderKill(t, 40000)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, script, strings.Join(lk.c.Addrs(), ","))
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	lk.feed(t, stdin)
	require.NoError(t, cmd.Wait(), "stderr:\n%s", stderr.String())
	var result struct {
		Acked       []string
		Failed      []string
		Undelivered int
	}
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &result), "output: %s\nstderr: %s", stdout.String(), stderr.String())
	assert.Empty(t, result.Failed, "an idempotent producer retries through a leader change")
	assert.Zero(t, result.Undelivered)
	assert.Len(t, result.Acked, len(lk.lines))
	lk.check(t, result.Acked)
}
