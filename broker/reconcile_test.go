package broker_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
)

// TestATopicBeingCreatedDoesNotStallTheOthers holds the broker in the
// middle of creating a topic's log, and produces to a topic it already has:
// creating files takes milliseconds per partition (more on a busy disk), and
// the traffic of the other topics must not wait for it.
func TestATopicBeingCreatedDoesNotStallTheOthers(t *testing.T) {
	b := start(t, t.TempDir())
	ctx := ctxT(t)
	adm := kadm.NewClient(client(t, b))
	resp, err := adm.CreateTopics(ctx, 1, 1, nil, "busy")
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	p := client(t, b, kgo.DefaultProduceTopic("busy"))
	require.NoError(t, p.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr())

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	restore := broker.HoldReplicaOpening(func(topic string) {
		if topic == "slow" {
			once.Do(func() { close(held) })
			<-release
		}
	})
	defer restore()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	created := make(chan error, 1)
	go func() {
		resp, err := adm.CreateTopics(ctx, 1, 1, nil, "slow")
		if err == nil {
			err = resp.Error()
		}
		created <- err
	}()
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the broker never started opening the new topic's log")
	}

	// Sent from a goroutine: a broker that holds its lock while it creates
	// the log answers only once the log is made, and the test must still
	// let it go on then.
	during := make(chan error, 1)
	go func() { during <- p.ProduceSync(ctx, &kgo.Record{Value: []byte("during")}).FirstErr() }()
	select {
	case err := <-during:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("a produce to another topic waited for the new topic's log to be created")
	}

	close(release)
	require.NoError(t, <-created)
	slow := client(t, b, kgo.DefaultProduceTopic("slow"))
	require.NoError(t, slow.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr())
}
