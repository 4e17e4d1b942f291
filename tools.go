//go:build tools

// This file pins dependencies that packages import while the code base is
// being built up, so that `go mod tidy` keeps them. It is not compiled.
package tools

import (
	_ "github.com/ClickHouse/clickhouse-go/v2"
	_ "github.com/gorilla/mux"
	_ "github.com/grafana-tools/sdk"
	_ "github.com/prometheus/alertmanager/template"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/exporter-toolkit/web"
	_ "github.com/slack-go/slack"
	_ "gopkg.in/yaml.v3"
)
