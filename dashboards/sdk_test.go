package dashboards

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/grafana-tools/sdk"
)

// TestSDKLimits pins down why the dashboards are built from this
// package's own types rather than github.com/grafana-tools/sdk's Board
// (README.md, "Which library does what"). If a newer SDK lifts a limit,
// this test fails and the README should be revisited.
func TestSDKLimits(t *testing.T) {
	t.Parallel()
	data, err := generateFor(t, testCatalog, Options{})[0].JSON()
	if err != nil {
		t.Fatal(err)
	}

	// The ClickHouse plugin's numeric format cannot be read into the
	// SDK's string Target.Format.
	var board sdk.Board
	err = json.Unmarshal(data, &board)
	if err == nil || !strings.Contains(err.Error(), "format") {
		t.Errorf("sdk.Board reads a dashboard with ClickHouse queries: err = %v; the SDK may now handle numeric formats", err)
	}

	// NewBoard numbers boards from a package-level counter: the same
	// dashboard generated twice differs.
	if a, b := sdk.NewBoard("x"), sdk.NewBoard("x"); a.ID == b.ID {
		t.Errorf("sdk.NewBoard gave the same ID twice (%d): its global counter is gone", a.ID)
	}

	// A new SDK board is legacy JSON: rows and schemaVersion 0.
	legacy, err := json.Marshal(sdk.NewBoard("x"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(legacy, &m); err != nil {
		t.Fatal(err)
	}
	if _, rows := m["rows"]; !rows || m["schemaVersion"] != float64(0) {
		t.Errorf("sdk.Board JSON: rows present %v, schemaVersion %v; want the legacy rows and 0", rows, m["schemaVersion"])
	}

	// Its save request knows only the deprecated folderId: no folderUid,
	// no message.
	req, err := json.Marshal(sdk.RawBoardRequest{Dashboard: []byte(`{"title":"x"}`), Parameters: sdk.SetDashboardParams{FolderID: 1, Overwrite: true}})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(req); !strings.Contains(s, `"FolderID"`) || strings.Contains(s, "folderUid") || strings.Contains(s, "message") {
		t.Errorf("sdk.RawBoardRequest now encodes as %s", s)
	}
}
