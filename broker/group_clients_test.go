package broker_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"klab.dev/klab/broker"
)

// Group consumers of Python's two Kafka clients, with their default
// settings but for where to start: each reads a topic in a group and
// commits; run again, each reads only what came after its commits.

// python returns Debian's python3 with module importable, or skips the test
// (CI installs the modules, .ci/run, and fails instead).
func python(t *testing.T, module, pkg string) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if exec.Command(python, "-c", "import "+module).Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run installs it with apt-get install -y %s", module, pkg)
		}
		t.Skipf("%s is not installed (apt-get install %s); CI runs this test", module, pkg)
	}
	return python
}

// runPython runs a script with the bootstrap address, the group, the topic
// and how many records to read, and returns the values it printed.
func runPython(t *testing.T, python, script string, b *broker.Broker, group, topic string, n int) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "consume.py")
	require.NoError(t, os.WriteFile(path, []byte(script), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, path, b.Addr(), group, topic, strconv.Itoa(n)).Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", out, stderr)
	return strings.Fields(string(out))
}

// kafka-python's KafkaConsumer: FindCoordinator v0, JoinGroup v2,
// OffsetCommit v2 and OffsetFetch v1 as kafka-python 2.0 sends them.
const kafkaPythonConsumer = `
import sys
from kafka import KafkaConsumer
bootstrap, group, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                  auto_offset_reset='earliest', enable_auto_commit=False)
seen = []
while len(seen) < n:
    for tp, recs in c.poll(timeout_ms=1000).items():
        seen += [r.value.decode() for r in recs]
c.commit()
c.close()
print("\n".join(seen))
`

// confluent-kafka's Consumer (librdkafka).
const confluentConsumer = `
import sys
from confluent_kafka import Consumer
bootstrap, group, topic, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = Consumer({'bootstrap.servers': bootstrap, 'group.id': group,
              'auto.offset.reset': 'earliest', 'enable.auto.commit': False})
c.subscribe([topic])
seen = []
while len(seen) < n:
    m = c.poll(1.0)
    if m is None:
        continue
    if m.error():
        raise SystemExit(str(m.error()))
    seen.append(m.value().decode())
c.commit(asynchronous=False)
c.close()
print("\n".join(seen))
`

func TestPythonGroupConsumersCommitAndResume(t *testing.T) {
	for _, tc := range []struct {
		name, module, pkg, script string
	}{
		{"kafka-python", "kafka", "python3-kafka", kafkaPythonConsumer},
		{"confluent-kafka", "confluent_kafka", "python3-confluent-kafka", confluentConsumer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			py := python(t, tc.module, tc.pkg)
			b := start(t, t.TempDir(), groupSettings...)
			_, err := kadm.NewClient(client(t, b)).CreateTopics(ctxT(t), 3, 1, nil, "events")
			require.NoError(t, err)
			produceValues(t, b, "events", 12)

			got := runPython(t, py, tc.script, b, "py-group", "events", 12)
			assert.ElementsMatch(t, strings.Fields("0 1 2 3 4 5 6 7 8 9 10 11"), got)

			produceValues(t, b, "events", 3)
			got = runPython(t, py, tc.script, b, "py-group", "events", 3)
			assert.ElementsMatch(t, strings.Fields("0 1 2"), got, "resumed from the commits")
		})
	}
}
