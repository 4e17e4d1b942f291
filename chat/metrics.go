package chat

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics of the sender, registered with the Registerer given in
// Options so that two instances can live in one process.
type metrics struct {
	calls       *prometheus.CounterVec
	permanent   *prometheus.CounterVec
	queueDepth  prometheus.Gauge
	queueAge    prometheus.Gauge
	leader      prometheus.Gauge
	ledgerFails prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg) // a nil reg leaves the metrics unregistered
	return &metrics{
		calls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_chat_messages_total",
			Help: "Slack calls by method and result (ok, retry, rate_limited, permanent_error).",
		}, []string{"method", "result"}),
		permanent: f.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_chat_permanent_errors_total",
			Help: "Slack calls that failed for good, by Slack's error string; the delivery is marked failed.",
		}, []string{"error"}),
		queueDepth: f.NewGauge(prometheus.GaugeOpts{
			Name: "nines_chat_queue_depth",
			Help: "Chat deliveries waiting to be sent (on the leader; 0 elsewhere).",
		}),
		queueAge: f.NewGauge(prometheus.GaugeOpts{
			Name: "nines_chat_queue_oldest_age_seconds",
			Help: "Age of the oldest timeline event still waiting for a chat delivery (on the leader; 0 elsewhere).",
		}),
		leader: f.NewGauge(prometheus.GaugeOpts{
			Name: "nines_chat_leader",
			Help: "1 while this replica holds the chat lease and sends to Slack, else 0.",
		}),
		ledgerFails: f.NewCounter(prometheus.CounterOpts{
			Name: "nines_chat_store_errors_total",
			Help: "Failed reads and writes of the chat sender's durable state; sending waits until they succeed.",
		}),
	}
}

// handlerMetrics are the metrics of the interactive endpoints.
type handlerMetrics struct {
	requests  *prometheus.CounterVec
	responses *prometheus.CounterVec
}

func newHandlerMetrics(reg prometheus.Registerer) *handlerMetrics {
	f := promauto.With(reg)
	return &handlerMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_chat_requests_total",
			Help: "Requests from Slack (interactions and slash commands) by endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
		responses: f.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_chat_responses_total",
			Help: "Answers posted to Slack's response_url, by result.",
		}, []string{"result"}),
	}
}
