package availability

import (
	"context"
	"fmt"
	"time"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/fault"
)

// ManyDailySource is a Source that also answers the daily series of many
// services in one query. chstore implements it; Service.DailyServices
// falls back to one Daily query per service without it.
type ManyDailySource interface {
	// DailyServices returns, per service of q.Services, one RawDay per day
	// of q.Days that has downtime or incidents. Services without any may
	// be absent.
	DailyServices(ctx context.Context, q ManyDailyQuery) (map[string][]RawDay, error)
}

// ManyDailyQuery is a DailyQuery for many services at once.
type ManyDailyQuery struct {
	// Services are the services asked for (not empty).
	Services []string
	// Days, Now and Weights are as in DailyQuery.
	Days    []catalog.Interval
	Now     time.Time
	Weights ImpactWeights
	// Maintenance holds each service's maintenance intervals over the
	// days, sorted, merged, whole seconds. Services absent have none.
	Maintenance map[string][]catalog.Interval
}

// dayIntervals returns the calendar days of loc from the day of from to
// the day of to, both included (their dates are read in their own
// location), leaving out days that have not started; today ends now.
func dayIntervals(loc *time.Location, from, to, now time.Time) ([]catalog.Interval, error) {
	fy, fm, fd := from.Date()
	ty, tm, td := to.Date()
	first := time.Date(fy, fm, fd, 0, 0, 0, 0, loc)
	last := time.Date(ty, tm, td, 0, 0, 0, 0, loc)
	if last.Before(first) {
		return nil, fmt.Errorf("%w: from must not be after to", fault.ErrInvalid)
	}
	if first.Unix() < 0 {
		return nil, fmt.Errorf("%w: from: before 1970", fault.ErrInvalid)
	}
	var days []catalog.Interval
	for i := 0; ; i++ {
		start := time.Date(fy, fm, fd+i, 0, 0, 0, 0, loc)
		if start.After(last) || !start.Before(now) {
			break
		}
		if i >= MaxDays {
			return nil, fmt.Errorf("%w: to: at most %d days after from", fault.ErrInvalid, MaxDays)
		}
		end := minTime(time.Date(fy, fm, fd+i+1, 0, 0, 0, 0, loc), now)
		days = append(days, catalog.Interval{Start: start.UTC(), End: end.UTC()})
	}
	return days, nil
}

// toDays turns a service's raw days into its figures, one per day.
func toDays(days []catalog.Interval, loc *time.Location, raws []RawDay, maint []catalog.Interval) []Day {
	byDay := make(map[int]RawDay, len(raws))
	for _, r := range raws {
		byDay[r.Index] = r
	}
	out := make([]Day, len(days))
	for i, iv := range days {
		out[i] = computeDay(iv, loc, byDay[i], overlapSeconds(maint, iv.Start, iv.End))
	}
	return out
}

// DailyServices returns the daily series of the catalogued services
// names, as Daily returns each, with one query for all of them when the
// Source can (ManyDailySource). Names the catalog does not hold are
// errors wrapping fault.ErrNotFound.
func (s *Service) DailyServices(ctx context.Context, names []string, from, to time.Time) (map[string][]Day, error) {
	cat := s.current()
	for _, name := range names {
		if _, ok := cat.Service(name); !ok {
			return nil, fmt.Errorf("%w: service %q is not in the catalog", fault.ErrNotFound, name)
		}
	}
	many, ok := s.src.(ManyDailySource)
	if !ok {
		out := make(map[string][]Day, len(names))
		for _, name := range names {
			d, err := s.Daily(ctx, name, from, to)
			if err != nil {
				return nil, err
			}
			out[name] = d
		}
		return out, nil
	}
	loc := cat.Location()
	now := s.Now()
	days, err := dayIntervals(loc, from, to, now)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Day, len(names))
	if len(days) == 0 || len(names) == 0 {
		for _, name := range names {
			out[name] = []Day{}
		}
		return out, nil
	}
	maint := map[string][]catalog.Interval{}
	for _, name := range names {
		if ivs := catalog.WholeSeconds(cat.Maintenance(name, days[0].Start, days[len(days)-1].End)); len(ivs) > 0 {
			maint[name] = ivs
		}
	}
	raws, err := many.DailyServices(ctx, ManyDailyQuery{
		Services: names, Days: days, Now: now, Weights: s.cfg.ImpactWeights, Maintenance: maint,
	})
	if err != nil {
		return nil, fmt.Errorf("daily availability of %d services: %w", len(names), err)
	}
	for _, name := range names {
		out[name] = toDays(days, loc, raws[name], maint[name])
	}
	return out, nil
}
