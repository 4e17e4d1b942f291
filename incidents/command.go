package incidents

import (
	"fmt"
	"strings"
	"time"
)

// CommandKind names a person's action (or the reconciler's) on incidents.
type CommandKind string

// Command kinds.
const (
	CommandAcknowledge  CommandKind = "acknowledge"
	CommandResolve      CommandKind = "resolve"
	CommandNote         CommandKind = "note"
	CommandOpen         CommandKind = "open"
	CommandLink         CommandKind = "link"
	CommandUnlink       CommandKind = "unlink"
	CommandResolveStale CommandKind = "resolve_stale"
	CommandAnnotate     CommandKind = "annotate"
	// CommandNotDowntime marks a period of an incident as not downtime
	// (MarkNotDowntime): Text is the reason, Period the period (nil: the
	// whole incident; a zero Start or End, the incident's).
	CommandNotDowntime CommandKind = "not_downtime"
	// CommandWithdrawNotDowntime withdraws the mark made at Mark
	// (WithdrawNotDowntime): Text is the reason.
	CommandWithdrawNotDowntime CommandKind = "withdraw_not_downtime"
	// CommandSync changes nothing: its result says that the deriver has
	// applied what was logged before it (Journal.Sync).
	CommandSync CommandKind = "sync"
	// CommandForget makes the deriver drop what it holds in memory and
	// read it from the store again: `nines replay` logs it after writing
	// re-derived incidents.
	CommandForget CommandKind = "forget"
)

// Command is an action on incidents as the log keeps it: what was asked,
// by whom and when. Applying it (Service.Do) at any later time gives the
// same result as applying it when it was asked.
type Command struct {
	// ID names the command; the log's readers answer its caller by it.
	ID       string               `json:"id"`
	Kind     CommandKind          `json:"kind"`
	At       time.Time            `json:"at"`
	Incident string               `json:"incident,omitempty"`
	Actor    string               `json:"actor,omitempty"`
	Text     string               `json:"text,omitempty"`     // CommandNote, CommandAnnotate
	Event    EventKind            `json:"event,omitempty"`    // CommandAnnotate
	Upstream string               `json:"upstream,omitempty"` // CommandLink
	Ends     map[string]time.Time `json:"ends,omitempty"`     // CommandResolveStale
	Open     *OpenRequest         `json:"open,omitempty"`     // CommandOpen
	Period   *Period              `json:"period,omitempty"`   // CommandNotDowntime
	Mark     *time.Time           `json:"mark,omitempty"`     // CommandWithdrawNotDowntime
}

// Validate reports what makes c impossible to apply, wrapping ErrInvalid.
func (c Command) Validate() error {
	if c.At.IsZero() {
		return fmt.Errorf("%w: command %s: no time", ErrInvalid, c.Kind)
	}
	switch c.Kind {
	case CommandOpen:
		if c.Open == nil {
			return fmt.Errorf("%w: command open: no request", ErrInvalid)
		}
		return nil
	case CommandSync, CommandForget:
		return nil
	case CommandAcknowledge, CommandResolve, CommandNote, CommandUnlink, CommandResolveStale, CommandAnnotate:
	case CommandNotDowntime:
		if err := c.notDowntimeRequest().validate(); err != nil {
			return err
		}
	case CommandWithdrawNotDowntime:
		if err := validateWithdrawal(c.Mark, c.Text); err != nil {
			return err
		}
	case CommandLink:
		if strings.TrimSpace(c.Upstream) == "" {
			return fmt.Errorf("%w: caused_by: required", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: command kind %q", ErrInvalid, c.Kind)
	}
	if c.Incident == "" {
		return fmt.Errorf("%w: command %s: no incident", ErrInvalid, c.Kind)
	}
	return nil
}
