package incidents

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Annotate adds an event of kind to the incident's timeline, e.g. a change
// recorded for its service.
func Annotate(inc *Incident, kind EventKind, actor, text string, at time.Time) (Change, error) {
	if strings.TrimSpace(text) == "" {
		return Change{}, fmt.Errorf("%w: event text is empty", ErrInvalid)
	}
	return manualEvent(inc.Clone(), kind, actor, at, text), nil
}

// AddEvent adds an event to the incident's timeline.
func (s *Service) AddEvent(ctx context.Context, id string, kind EventKind, actor, text string) (*Incident, error) {
	return s.Do(ctx, Command{Kind: CommandAnnotate, Incident: id, Event: kind, Actor: actor, Text: text, At: s.now().UTC()})
}
