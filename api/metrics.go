package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus series.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	verifies  *prometheus.CounterVec
}

// NewMetrics registers the series in a registry of their own (plus the Go
// runtime's), so that several servers in one test process do not collide.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyward_http_requests_total",
		Help: "HTTP requests by route and status."}, []string{"route", "status"})
	m.durations = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "keyward_http_request_duration_seconds",
		Help: "HTTP request latency by route.", Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1}}, []string{"route"})
	m.verifies = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyward_verifications_total",
		Help: "Key verifications by result code."}, []string{"code"})
	m.reg.MustRegister(m.requests, m.durations, m.verifies,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *Metrics) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw, ok := w.(*statusWriter)
		h(w, r)
		status := http.StatusOK
		if ok {
			status = sw.status
		}
		m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		m.durations.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}

func (m *Metrics) verified(code string) {
	if m != nil {
		m.verifies.WithLabelValues(code).Inc()
	}
}

// Register adds more series (a cache's, a listener's) to the server's registry.
func (m *Metrics) Register(cs ...prometheus.Collector) {
	m.reg.MustRegister(cs...)
}
