package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// controlledShutdown asks the active controller to take this broker's work
// away (BrokerHeartbeat with WantShutDown; see controller.ControlledShutdown)
// and waits until it has, or until ControlledShutdownTimeout: then the
// broker stops anyway, as after a crash its partitions move once gossip
// declares it gone. It gives up sooner when no controller can be reached
// at all, and does nothing in a cluster of one, where no other broker
// could take the partitions. If this broker is the active controller, it
// then hands that role to another voter, so that the cluster has a
// controller while this one stops.
func (b *Broker) controlledShutdown() {
	if b.ctrl == nil || b.members == nil || len(b.members.Alive()) < 2 {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.ControlledShutdownTimeout)
	defer cancel()
	b.log.Info("controlled shutdown: asking the controller to move this broker's partitions", "id", b.cfg.NodeID)
	defer b.ctrl.Resign() // however it ends: the quorum should not wait out an election
	lastHeard := time.Now()
	for {
		done, err := b.askShutdown(ctx)
		switch {
		case done:
			b.log.Info("controlled shutdown: leadership moved", "id", b.cfg.NodeID, "took", time.Since(start).Round(time.Millisecond))
			return
		case errors.Is(err, kerr.StaleBrokerEpoch):
			b.log.Warn("controlled shutdown: this broker is not registered yet; stopping without it", "err", err)
			return
		case err == nil:
			lastHeard = time.Now()
		case time.Since(lastHeard) > 3*time.Second:
			b.log.Warn("controlled shutdown: no controller answers; stopping without it", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			b.log.Warn("controlled shutdown: timed out; stopping anyway", "after", b.cfg.ControlledShutdownTimeout)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// askShutdown sends one BrokerHeartbeat with WantShutDown and returns the
// controller's ShouldShutDown.
func (b *Broker) askShutdown(ctx context.Context) (bool, error) {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch, req.WantShutdown = b.cfg.NodeID, b.incarnation, true
	req.CurrentMetadataOffset = int64(b.ctrl.Image().Offset)
	ask, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	raw, err := b.askController(ask, req, func(r kmsg.Response) int16 { return r.(*kmsg.BrokerHeartbeatResponse).ErrorCode })
	if err != nil {
		return false, err
	}
	return raw.(*kmsg.BrokerHeartbeatResponse).ShouldShutdown, nil
}
