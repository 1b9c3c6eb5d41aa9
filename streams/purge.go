package streams

import (
	"context"
	"time"

	"klab.dev/klab/admin"
	"klab.dev/klab/consumer"
)

// purger deletes what the application has committed of its repartition
// topics, as Kafka Streams does every repartition.purge.interval.ms: a
// repartition topic is the application's own, read by no one else, so a
// record whose offset is committed will never be read again, and keeping
// it would only fill the brokers' disks. It is a thread's, called from
// its goroutine.
type purger struct {
	app      *KafkaStreams
	adm      *admin.Client // made when first needed
	last     time.Time
	pending  map[admin.TopicPartition]int64 // committed, not purged yet
	clientID string
}

// committed notes offsets just committed; those of repartition topics are
// purged at the next purge.
func (p *purger) committed(offsets map[consumer.TopicPartition]int64) {
	for tp, o := range offsets {
		if !isRepartitionTopic(p.app.topo, p.app.cfg.ApplicationID, tp.Topic) {
			continue
		}
		if p.pending == nil {
			p.pending = map[admin.TopicPartition]int64{}
		}
		p.pending[admin.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}] = o
	}
}

// maybePurge deletes the records before the committed offsets of the
// repartition partitions, if repartition.purge.interval.ms has passed
// since the last purge. A failure is logged, not fatal: the next purge
// tries again.
func (p *purger) maybePurge() {
	if len(p.pending) == 0 || time.Since(p.last) < p.app.cfg.RepartitionPurgeInterval {
		return
	}
	if p.adm == nil {
		p.adm = admin.New(admin.Options{Bootstrap: p.app.cfg.BootstrapServers, ClientID: p.clientID})
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	results, err := p.adm.DeleteRecords(ctx, p.pending)
	for tp, r := range results {
		if r.Err == nil {
			delete(p.pending, tp)
		}
	}
	if err != nil {
		p.app.cfg.Logger("streams %s: purging repartition topics: %v", p.app.cfg.ApplicationID, err)
	}
	p.last = time.Now()
}

// close closes the admin client.
func (p *purger) close() {
	if p.adm != nil {
		p.adm.Close()
	}
}
