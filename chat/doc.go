// Package chat posts nines' incidents and availability to Slack and lets
// people act on incidents from there. It owns:
//
//   - routing: which channels hear about an incident (the operations
//     channel, the owner's channel from the service catalog, rules);
//   - rendering: one Block Kit message per incident and channel, thread
//     replies for timeline events, flap summaries and the availability
//     digest, all within Slack's limits;
//   - delivery: a Sender that tails the incident timeline stored in
//     ClickHouse, keeps its own durable state there (which messages exist,
//     which deliveries were attempted and made), sends in order per
//     incident, exactly once across crashes and replicas, and only on the
//     replica holding the lease;
//   - interaction: the signed endpoints for Slack's buttons and the /nines
//     slash command.
//
// It is the only package that imports slack-go. See README.md in this
// directory for how delivery, recovery and leadership work.
package chat
