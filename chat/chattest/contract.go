package chattest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/incidents"
)

// Contract checks a Store against what the chat sender relies on. open
// returns a new, empty store whose clock is the wall clock. Times are
// compared to the millisecond, the stores' resolution.
func Contract(t *testing.T, open func(t *testing.T) Store) {
	t.Run("events", func(t *testing.T) { contractEvents(t, open(t)) })
	t.Run("deliveries", func(t *testing.T) { contractDeliveries(t, open(t)) })
	t.Run("messages and cursor", func(t *testing.T) { contractMessages(t, open(t)) })
	t.Run("leases", func(t *testing.T) { contractLeases(t, open(t)) })
}

func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

func contractEvents(t *testing.T, s Store) {
	ctx := context.Background()
	start := ms(time.Now().Add(-time.Minute))
	opened, err := incidents.Open(incidents.OpenRequest{Service: "checkout", Title: "Checkout down", Impact: incidents.ImpactOutage, StartedAt: start, Actor: "alice"}, start.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	before := ms(time.Now())
	if err := s.Write(ctx, []incidents.Change{opened}); err != nil {
		t.Fatal(err)
	}
	after1 := time.Now()
	time.Sleep(5 * time.Millisecond)
	acked, err := incidents.Acknowledge(opened.Incident, "bob", start.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	before2 := ms(time.Now())
	// Written twice: the second copy must not show up as a new event.
	for range 2 {
		if err := s.Write(ctx, []incidents.Change{acked}); err != nil {
			t.Fatal(err)
		}
	}
	after2 := time.Now()

	evs, err := s.ChatEventsSince(ctx, start.Add(-time.Hour), start.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, string(e.Kind))
	}
	if want := []string{"opened", "acknowledged"}; !slices.Equal(kinds, want) {
		t.Fatalf("events = %v, want %v", kinds, want)
	}
	if e := evs[0]; e.InsertedAt.Before(before) || e.InsertedAt.After(after1) || e.IncidentID != opened.Incident.ID || e.Actor != "alice" {
		t.Errorf("opened event = %+v, want stored between %v and %v", e, before, after1)
	}
	if e := evs[1]; e.InsertedAt.Before(before2) || e.InsertedAt.After(after2) || !ms(e.At).Equal(ms(start.Add(2*time.Second))) {
		t.Errorf("ack event = %+v, want stored between %v and %v", e, before2, after2)
	}
	// since filters by storage time, notBefore by the event's own time.
	evs, err = s.ChatEventsSince(ctx, before2, start.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != incidents.EventAcknowledged {
		t.Errorf("events since the ack = %+v, want the ack only", evs)
	}
	evs, err = s.ChatEventsSince(ctx, start.Add(-time.Hour), start.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != incidents.EventAcknowledged {
		t.Errorf("events at or after start+1s = %+v, want the ack only", evs)
	}

	got, err := s.ChatIncidents(ctx, []string{opened.Incident.ID, "inc-00000000000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	inc := got[opened.Incident.ID]
	if len(got) != 1 || inc == nil || inc.State != incidents.StateAcknowledged || inc.AcknowledgedBy != "bob" {
		t.Errorf("ChatIncidents = %+v, want the acknowledged version only", got)
	}
}

func contractDeliveries(t *testing.T, s Store) {
	ctx := context.Background()
	t0 := ms(time.Now().Add(-time.Minute))
	rows := chat.Records{Deliveries: []chat.Delivery{
		{IncidentID: "inc-a", Channel: "#ops", Key: "main", Kind: chat.KindMain, State: chat.StateIntent, Holder: "h1", At: t0.Add(2 * time.Second)},
		// A final state outranks an intent written later.
		{IncidentID: "inc-a", Channel: "#ops", Key: "main", Kind: chat.KindMain, State: chat.StateSent, TS: "1.000100", Hash: "abc", Covers: []string{"ev-1", "ev-2"}, Holder: "h1", At: t0.Add(time.Second)},
		{IncidentID: "inc-a", Channel: "#ops", Key: "ev-3", Kind: chat.KindReply, State: chat.StateIntent, Holder: "h1", At: t0.Add(3 * time.Second)},
		{IncidentID: "inc-a", Channel: "#ops", Key: "ev-3", Kind: chat.KindReply, State: chat.StateIntent, Holder: "h2", At: t0.Add(4 * time.Second)},
		{IncidentID: "inc-a", Channel: "#team", Key: "main", Kind: chat.KindMain, State: chat.StateFailed, Error: "not_in_channel", Holder: "h1", At: t0},
		{IncidentID: "inc-b", Channel: "#ops", Key: "main", Kind: chat.KindMain, State: chat.StateIntent, Holder: "h2", At: t0},
		{IncidentID: "digest", Channel: "#ops", Key: "digest:2026-01-05T08:00:00Z", Kind: chat.KindDigest, State: chat.StateSent, TS: "2.000000", Holder: "h1", At: t0},
	}}
	if err := s.WriteChat(ctx, rows); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadChat(ctx, []string{"inc-a", "digest"}, "h1")
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ inc, ch, key string }
	by := map[key]chat.Delivery{}
	for _, d := range got.Deliveries {
		by[key{d.IncidentID, d.Channel, d.Key}] = d
	}
	if len(by) != 4 {
		t.Errorf("LoadChat returned %d deliveries, want 4: %+v", len(by), got.Deliveries)
	}
	if d := by[key{"inc-a", "#ops", "main"}]; d.State != chat.StateSent || d.TS != "1.000100" || d.Hash != "abc" || !slices.Equal(d.Covers, []string{"ev-1", "ev-2"}) || !d.ForeignIntentAt.IsZero() {
		t.Errorf("main in #ops = %+v, want sent with its covers", d)
	}
	if d := by[key{"inc-a", "#ops", "ev-3"}]; d.State != chat.StateIntent || d.Holder != "h2" || !ms(d.ForeignIntentAt).Equal(t0.Add(4*time.Second)) {
		t.Errorf("ev-3 = %+v, want h2's intent as the latest and as a foreign intent", d)
	}
	if d := by[key{"inc-a", "#team", "main"}]; d.State != chat.StateFailed || d.Error != "not_in_channel" || d.Kind != chat.KindMain {
		t.Errorf("main in #team = %+v, want failed with Slack's reason", d)
	}
	if d := by[key{"digest", "#ops", "digest:2026-01-05T08:00:00Z"}]; d.State != chat.StateSent || !ms(d.At).Equal(t0) {
		t.Errorf("digest = %+v", d)
	}
	if _, ok := by[key{"inc-b", "#ops", "main"}]; ok {
		t.Error("LoadChat returned a delivery of an incident not asked for")
	}
	got, err = s.LoadChat(ctx, []string{"inc-a"}, "h2")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range got.Deliveries {
		if d.Key == "ev-3" && !ms(d.ForeignIntentAt).Equal(t0.Add(3*time.Second)) {
			t.Errorf("ev-3 seen by h2: foreign intent at %v, want h1's at %v", d.ForeignIntentAt, t0.Add(3*time.Second))
		}
	}
}

func contractMessages(t *testing.T, s Store) {
	ctx := context.Background()
	t0 := ms(time.Now().Add(-time.Minute))
	if _, ok, err := s.ChatCursor(ctx, "chat-sender"); err != nil || ok {
		t.Fatalf("cursor of an empty store: ok=%v err=%v, want none", ok, err)
	}
	err := s.WriteChat(ctx, chat.Records{
		Messages: []chat.MessageRecord{
			{IncidentID: "inc-a", Channel: "#ops", ChannelID: "C1", TS: "1.000100", Hash: "new", At: t0.Add(time.Second)},
			{IncidentID: "inc-a", Channel: "#ops", ChannelID: "C1", TS: "1.000100", Hash: "old", At: t0},
			{IncidentID: "inc-a", Channel: "#team", ChannelID: "C2", TS: "1.000200", Hash: "x", At: t0},
		},
		Cursors: []chat.Cursor{
			{Name: "chat-sender", Position: t0.Add(-time.Hour), At: t0.Add(time.Second)},
			{Name: "chat-sender", Position: t0, At: t0},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadChat(ctx, []string{"inc-a"}, "h1")
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]chat.MessageRecord{}
	for _, m := range got.Messages {
		by[m.Channel] = m
	}
	if m := by["#ops"]; len(by) != 2 || m.Hash != "new" || m.ChannelID != "C1" || m.TS != "1.000100" || !ms(m.At).Equal(t0.Add(time.Second)) {
		t.Errorf("messages = %+v, want the latest of #ops and #team's", got.Messages)
	}
	pos, ok, err := s.ChatCursor(ctx, "chat-sender")
	if err != nil || !ok || !ms(pos).Equal(t0.Add(-time.Hour)) {
		t.Errorf("cursor = %v %v %v, want the latest written (it may move back)", pos, ok, err)
	}
}

func contractLeases(t *testing.T, s Store) {
	ctx := context.Background()
	now := ms(time.Now())
	for _, b := range []struct {
		holder string
		at     time.Time
	}{{"b", now}, {"a", now.Add(-20 * time.Second)}, {"c", now.Add(-time.Second)}, {"a", now.Add(-30 * time.Second)}} {
		if err := s.Heartbeat(ctx, "lease", b.holder, b.at); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Heartbeat(ctx, "other", "0", now); err != nil {
		t.Fatal(err)
	}
	got, err := s.LeaseHolders(ctx, "lease", now.Add(-15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b", "c"}; !slices.Equal(got, want) {
		t.Errorf("live holders = %v, want %v", got, want)
	}
	if err := s.Heartbeat(ctx, "lease", "a", now); err != nil {
		t.Fatal(err)
	}
	got, err = s.LeaseHolders(ctx, "lease", now.Add(-15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("live holders after a's heartbeat = %v, want %v", got, want)
	}
}
