package collector_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/collector"
)

const (
	helpDeployFrequency = "# HELP nines_service_deployment_frequency_per_day DORA deployment frequency: deploys completed in the window (succeeded, failed or rolled back) per day of the window, as GET /api/v1/dora computes it.\n# TYPE nines_service_deployment_frequency_per_day gauge\n"
	helpChangeFailure   = "# HELP nines_service_change_failure_ratio DORA change failure rate: share of the window's deploys that failed, were rolled back, were marked as an incident's cause or were followed by a rollback within a day; absent without deploys.\n# TYPE nines_service_change_failure_ratio gauge\n"
	helpRollback        = "# HELP nines_service_rollback_ratio DORA rollback rate: rollbacks recorded in the window per deploy completed in it, as GET /api/v1/dora computes it; absent without deploys.\n# TYPE nines_service_rollback_ratio gauge\n"
	helpTimeToRestore   = "# HELP nines_service_time_to_restore_seconds DORA time to restore: mean time from start to resolve of the incidents that started in the window and were resolved; absent when there are none.\n# TYPE nines_service_time_to_restore_seconds gauge\n"
)

var doraMetrics = []string{collector.MetricDeploymentFrequency, collector.MetricChangeFailureRate, collector.MetricRollbackRate, collector.MetricTimeToRestore}

func TestCollectDORA(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dora map[string][]collector.DORAFigure
		want string
	}{
		{
			name: "every figure of every window, per service",
			dora: map[string][]collector.DORAFigure{
				"1h": {
					{Service: "checkout", Owner: "payments", DeploymentsPerDay: 48, ChangeFailureRate: ptr(0.5), RollbackRate: ptr(0.25), TimeToRestoreSeconds: ptr(600.0)},
					{Service: "search", Owner: "discovery", DeploymentsPerDay: 24, ChangeFailureRate: ptr(0.0)},
				},
				"7d": {
					{Service: "checkout", Owner: "payments", DeploymentsPerDay: 0.5, ChangeFailureRate: ptr(0.25), TimeToRestoreSeconds: ptr(1200.0)},
				},
			},
			want: helpChangeFailure +
				`nines_service_change_failure_ratio{owner="discovery",service="search",window="1h"} 0` + "\n" +
				`nines_service_change_failure_ratio{owner="payments",service="checkout",window="1h"} 0.5` + "\n" +
				`nines_service_change_failure_ratio{owner="payments",service="checkout",window="7d"} 0.25` + "\n" +
				helpDeployFrequency +
				`nines_service_deployment_frequency_per_day{owner="discovery",service="search",window="1h"} 24` + "\n" +
				`nines_service_deployment_frequency_per_day{owner="payments",service="checkout",window="1h"} 48` + "\n" +
				`nines_service_deployment_frequency_per_day{owner="payments",service="checkout",window="7d"} 0.5` + "\n" +
				helpRollback +
				`nines_service_rollback_ratio{owner="payments",service="checkout",window="1h"} 0.25` + "\n" +
				helpTimeToRestore +
				`nines_service_time_to_restore_seconds{owner="payments",service="checkout",window="1h"} 600` + "\n" +
				`nines_service_time_to_restore_seconds{owner="payments",service="checkout",window="7d"} 1200` + "\n",
		},
		{
			name: "no deploys and nothing restored: only the frequency, at 0",
			dora: map[string][]collector.DORAFigure{"1h": {{Service: "quiet", Owner: "web"}}},
			want: helpDeployFrequency +
				`nines_service_deployment_frequency_per_day{owner="web",service="quiet",window="1h"} 0` + "\n",
		},
		{
			name: "a service repeated in a window counts once",
			dora: map[string][]collector.DORAFigure{"1h": {
				{Service: "checkout", Owner: "payments", DeploymentsPerDay: 2},
				{Service: "checkout", Owner: "payments", DeploymentsPerDay: 3},
			}},
			want: helpDeployFrequency +
				`nines_service_deployment_frequency_per_day{owner="payments",service="checkout",window="1h"} 2` + "\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCollector(t, &fakeFigures{}, &fakeCounts{}, func(o *collector.Options) {
				o.Windows = []string{"1h", "7d"}
				o.DORA = &fakeDORA{figs: tc.dora}
			})
			if err := c.Refresh(t.Context()); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if err := testutil.CollectAndCompare(c, strings.NewReader(tc.want), doraMetrics...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCollectDORAFailure: a refresh whose DORA figures fail fails as a
// whole (nines_collector_up 0), and without a DORASource there are no
// DORA series.
func TestCollectDORAFailure(t *testing.T) {
	t.Parallel()
	figs := &fakeFigures{figs: map[string][]availability.Figure{"1h": {fig("checkout", "payments", "1h", 1)}}}
	c := newCollector(t, figs, &fakeCounts{}, func(o *collector.Options) {
		o.DORA = &fakeDORA{err: errors.New("changes table gone")}
	})
	if err := c.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "changes table gone") {
		t.Fatalf("Refresh = %v, want the DORA error", err)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(helpUp+"nines_collector_up 0\n"), collector.MetricUp); err != nil {
		t.Error(err)
	}

	without := newCollector(t, figs, &fakeCounts{})
	if err := without.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(without, doraMetrics...); n != 0 {
		t.Errorf("%d DORA series without a DORASource, want 0", n)
	}
}
