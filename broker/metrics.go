package broker

import "net/http"

// brokerMetrics are the broker's Prometheus metrics.
type brokerMetrics struct{}

func newBrokerMetrics(b *Broker) *brokerMetrics { return &brokerMetrics{} }

// metricsHandler serves /metrics.
func (b *Broker) metricsHandler() http.Handler { return http.NotFoundHandler() }
