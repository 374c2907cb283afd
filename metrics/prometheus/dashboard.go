package prometheus

import _ "embed"

// Dashboard is a Grafana dashboard (JSON, schema version 39) of the
// metrics a Collector exports: throughput, consumer lag, processing and
// end-to-end latencies, commits, in-flight work, errors, restores, store
// operations, rebalances and tasks. It has a data source variable and an
// instance filter; import it in Grafana (Dashboards, New, Import) or
// provision it from a file.
//
//go:embed dashboard.json
var Dashboard []byte
