package verifier

import "github.com/prometheus/client_golang/prometheus"

// Collectors are the cache's Prometheus series: hits, misses, entries, and
// whether it is suspended (answering nothing from memory because changes
// may go unheard).
func (c *Cache) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyward_verify_cache_hits_total",
			Help: "Verifications answered from the node's memory."},
			func() float64 { return float64(c.Stats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keyward_verify_cache_misses_total",
			Help: "Verifications the node's memory could not answer (filled from the database)."},
			func() float64 { return float64(c.Stats().Misses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyward_verify_cache_entries",
			Help: "Keys and \"no such key\" answers held in memory."},
			func() float64 { return float64(c.Stats().Entries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyward_verify_cache_suspended",
			Help: "1 while the cache answers nothing from memory (the change listener is down), else 0."},
			func() float64 {
				if c.Suspended() {
					return 1
				}
				return 0
			}),
	}
}
