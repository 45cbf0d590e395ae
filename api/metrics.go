package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keyward/keyward"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus series.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	verifies  *prometheus.CounterVec
	byCode    map[string]prometheus.Counter // verifies of each code, looked up once; read-only after NewMetrics
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
	m.byCode = map[string]prometheus.Counter{}
	for _, code := range []string{keyward.CodeValid, keyward.CodeNotFound, keyward.CodeInactive, keyward.CodeRevoked,
		keyward.CodeExpired, keyward.CodeKeysDisabled, keyward.CodeForbidden, keyward.CodeRateLimited} {
		m.byCode[code] = m.verifies.WithLabelValues(code)
	}
	m.reg.MustRegister(m.requests, m.durations, m.verifies,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *Metrics) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	// The route's series are looked up once, not at every request: label
	// lookups hash their values, and the verification route is hot.
	duration := m.durations.WithLabelValues(route)
	var byStatus sync.Map // int → prometheus.Counter
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw, ok := w.(*statusWriter)
		h(w, r)
		status := http.StatusOK
		if ok {
			status = sw.status
		}
		c, ok := byStatus.Load(status)
		if !ok {
			c, _ = byStatus.LoadOrStore(status, m.requests.WithLabelValues(route, strconv.Itoa(status)))
		}
		c.(prometheus.Counter).Inc()
		duration.Observe(time.Since(start).Seconds())
	}
}

func (m *Metrics) verified(code string) {
	if m == nil {
		return
	}
	if c, ok := m.byCode[code]; ok {
		c.Inc()
		return
	}
	m.verifies.WithLabelValues(code).Inc()
}

// Register adds more series (a cache's, a listener's) to the server's registry.
func (m *Metrics) Register(cs ...prometheus.Collector) {
	m.reg.MustRegister(cs...)
}
