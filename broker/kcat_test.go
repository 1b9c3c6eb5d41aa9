package broker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
)

// kcat runs kcat (librdkafka, a Kafka client written in C) with stdin and
// returns what it printed. Without kcat on the machine the test is skipped,
// except in CI, which installs it (.ci/run) and so must run these tests.
func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := runKcat(t, stdin, args...)
	require.NoError(t, err, "kcat %s:\n%s", strings.Join(args, " "), out)
	return out
}

// runKcat is kcat for a run that may fail: it returns what kcat printed
// and how it exited.
func runKcat(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not installed; .ci/run installs it with apt-get install -y kcat")
		}
		t.Skip("kcat is not installed (apt-get install kcat); CI runs this test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestKcatListsProducesAndConsumes(t *testing.T) {
	b := start(t, t.TempDir())
	_, err := kadm.NewClient(client(t, b)).CreateTopics(ctxT(t), 2, 1, nil, "kcat-topic")
	require.NoError(t, err)

	meta := kcat(t, "", "-b", b.Addr(), "-L")
	assert.Contains(t, meta, `topic "kcat-topic" with 2 partitions`)
	assert.Contains(t, meta, fmt.Sprintf("broker 1 at %s (controller)", b.Addr()))

	kcat(t, "k1:one\nk2:two\nk3:three\n", "-b", b.Addr(), "-P", "-t", "kcat-topic", "-p", "1", "-K", ":", "-X", "acks=all")
	out := kcat(t, "", "-b", b.Addr(), "-C", "-t", "kcat-topic", "-p", "1", "-o", "beginning", "-e", "-q", "-f", `%o %k=%s\n`)
	assert.Equal(t, "0 k1=one\n1 k2=two\n2 k3=three\n", out)

	// From an offset, and with gzip compression on the way in.
	kcat(t, "four\nfive\n", "-b", b.Addr(), "-P", "-t", "kcat-topic", "-p", "1", "-z", "gzip")
	out = kcat(t, "", "-b", b.Addr(), "-C", "-t", "kcat-topic", "-p", "1", "-o", "3", "-e", "-q", "-f", `%o %s\n`)
	assert.Equal(t, "3 four\n4 five\n", out)
}

// TestKcatProducesIdempotently: librdkafka's idempotent producer asks for
// a producer id first (kcat 1.7 with librdkafka 2.0 sends InitProducerId
// v4) and fails, fatally, on a broker that does not implement it; here
// it gets one, and its records are written once each.
func TestKcatProducesIdempotently(t *testing.T) {
	b := start(t, t.TempDir())
	_, err := kadm.NewClient(client(t, b)).CreateTopics(ctxT(t), 1, 1, nil, "kcat-idempotent")
	require.NoError(t, err)

	kcat(t, "one\ntwo\nthree\n", "-b", b.Addr(), "-P", "-t", "kcat-idempotent", "-X", "enable.idempotence=true")
	out := kcat(t, "", "-b", b.Addr(), "-C", "-t", "kcat-idempotent", "-o", "beginning", "-e", "-q", "-f", `%o %s\n`)
	assert.Equal(t, "0 one\n1 two\n2 three\n", out)
}
