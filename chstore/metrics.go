package chstore

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics of one Store. They are registered with the Registerer given in
// Options, if any, so that two stores can live in one process.
type metrics struct {
	ops         *prometheus.CounterVec
	errs        *prometheus.CounterVec
	insertRows  *prometheus.HistogramVec
	flushTime   prometheus.Histogram
	flushWrites prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg) // with a nil reg, metrics work but are not registered
	return &metrics{
		ops: f.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_clickhouse_operations_total",
			Help: "ClickHouse operations (queries, INSERTs, DDL) started, by operation.",
		}, []string{"op"}),
		errs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_clickhouse_errors_total",
			Help: "ClickHouse operations that failed, by operation.",
		}, []string{"op"}),
		insertRows: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nines_clickhouse_insert_rows",
			Help:    "Rows per INSERT, by table.",
			Buckets: prometheus.ExponentialBuckets(1, 10, 6),
		}, []string{"table"}),
		flushTime: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "nines_clickhouse_flush_duration_seconds",
			Help:    "Time to flush one batch of writes to ClickHouse.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
		flushWrites: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "nines_clickhouse_flush_writes",
			Help:    "Write calls merged into one flush.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
	}
}

func (m *metrics) op(op string)   { m.ops.WithLabelValues(op).Inc() }
func (m *metrics) fail(op string) { m.errs.WithLabelValues(op).Inc() }
