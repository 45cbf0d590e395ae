package keyward

import (
	"context"
	"math"
	"time"
)

// UsageSpike is a minute in which a key was used far above its own recent rate.
type UsageSpike struct {
	Key     *Key
	Minute  time.Time // the minute's start
	Count   int64     // verifications in that minute
	Average float64   // the key's recent average per minute before it
}

// RecordUsageSpikes writes a key.usage_spike event for each spike, so that an
// administrator sees keys used suspiciously much. Keys deleted meanwhile are
// still recorded: the event names them.
func (s *Service) RecordUsageSpikes(ctx context.Context, spikes []UsageSpike) error {
	now := s.Now()
	events := make([]*Event, len(spikes))
	for i, sp := range spikes {
		events[i] = s.event(ctx, now, sp.Key.TenantID, ActionKeyUsageSpike, SystemActor, keyRef(sp.Key), sp.Key.OwnerID,
			map[string]any{"minute": sp.Minute.UTC(), "verifications": sp.Count,
				"average_per_minute": math.Round(sp.Average*100) / 100})
	}
	return s.store.Update(ctx, func(tx Tx) error { return tx.InsertEvents(ctx, events...) })
}

// UsageBucket is one hour of a key's verifications by outcome code.
type UsageBucket struct {
	Hour   time.Time
	Counts map[string]int64
	Total  int64
}

// maxUsageHours bounds one usage query: 31 days of hourly buckets.
const maxUsageHours = 31 * 24

// KeyUsage reads a key's hourly verification counts by outcome. from and to
// default to the last 24 hours; from is rounded down and to up to whole
// hours. Counts reach the store within the usage flush interval.
func (s *Service) KeyUsage(ctx context.Context, p *Principal, id string, from, to *time.Time) (time.Time, time.Time, []UsageBucket, error) {
	now := s.Now()
	end := now.Truncate(time.Hour).Add(time.Hour)
	if to != nil {
		end = to.UTC()
		if t := end.Truncate(time.Hour); !t.Equal(end) {
			end = t.Add(time.Hour)
		}
	}
	start := end.Add(-24 * time.Hour)
	if from != nil {
		start = from.UTC().Truncate(time.Hour)
	}
	if !start.Before(end) {
		return start, end, nil, Errorf(EInvalid, "from must be before to")
	}
	// Rounding up may leave RFC 3339, whose years end at 9999: such a range
	// could not be answered (its JSON would fail to encode).
	if end.Year() > 9999 {
		return start, end, nil, Errorf(EInvalid, "to must be before the year 10000")
	}
	if end.Sub(start) > maxUsageHours*time.Hour {
		return start, end, nil, Errorf(EInvalid, "at most %d days of usage per request", maxUsageHours/24)
	}
	var counts []UsageCount
	err := s.store.View(ctx, func(tx Tx) error {
		k, err := loadKey(ctx, tx, p, id)
		if err != nil {
			return err
		}
		counts, err = tx.KeyUsage(ctx, p.Tenant.ID, k.ID, start, end)
		return err
	})
	if err != nil {
		return start, end, nil, err
	}
	// The store lists counts oldest first, so each hour's are together.
	buckets := []UsageBucket{}
	for _, c := range counts {
		if n := len(buckets); n == 0 || !buckets[n-1].Hour.Equal(c.Hour) {
			buckets = append(buckets, UsageBucket{Hour: c.Hour, Counts: map[string]int64{}})
		}
		b := &buckets[len(buckets)-1]
		b.Counts[c.Code] += c.Count
		b.Total += c.Count
	}
	return start, end, buckets, nil
}
