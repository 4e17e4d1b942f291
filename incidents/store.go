package incidents

import (
	"context"
	"time"
)

// GroupRef identifies the stream of incidents one grouping key produces for
// one service.
type GroupRef struct {
	GroupKey string
	Service  string
}

// Store knows how to keep incidents durably. Write returns only once the
// changes are stored (or with an error wrapping ErrUnavailable when the
// store cannot be reached); implementations may batch concurrent writes.
type Store interface {
	// Latest returns, for each ref, its most recently opened incident with
	// its alerts. Refs with no incident are absent from the map.
	Latest(ctx context.Context, refs []GroupRef) (map[GroupRef]*Incident, error)
	// Get returns one incident with its alerts, or ErrNotFound.
	Get(ctx context.Context, id string) (*Incident, error)
	// Write stores new incident versions, their changed alerts and their
	// new timeline events.
	Write(ctx context.Context, changes []Change) error
}

// Reader knows how to list incidents and read timelines, for the API.
type Reader interface {
	// List returns a page of the incidents f matches, with their alerts,
	// and the cursor of the next one (empty on the last). A page may hold
	// fewer than f.Limit incidents (the store bounds the alerts a page
	// holds): follow next.
	List(ctx context.Context, f Filter) (incs []*Incident, next string, err error)
	Get(ctx context.Context, id string) (*Incident, error)
	Timeline(ctx context.Context, id string) ([]Event, error)
}

// maxPage is the most incidents ListUpTo asks a page for (the API's
// limit).
const maxPage = 1000

// ListUpTo returns the incidents f matches, following the pages of list
// (a Reader's List: a page may hold fewer than its limit) until there are
// at least n or none is left. f.Limit and f.Cursor are its own.
func ListUpTo(ctx context.Context, list func(context.Context, Filter) ([]*Incident, string, error), f Filter, n int) ([]*Incident, error) {
	var out []*Incident
	f.Limit, f.Cursor = min(n, maxPage), ""
	for {
		page, next, err := list(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == "" || len(out) >= n {
			return out, nil
		}
		f.Cursor = next
	}
}

// Clock returns the current time; tests pass a fixed one.
type Clock func() time.Time
