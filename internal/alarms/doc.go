// Package alarms is the gateway's one alarm monitor (docs/alarms.md): it
// watches the Galaxy's alarms through a provider, keeps the alarm state
// machine (UNACK_ALM, ACK_ALM, UNACK_RTN, ACK_RTN) and the set of active
// alarms, numbers every transition into a bounded replay ring and fans it
// out to any number of feeds, and routes acknowledgements back to the
// provider with the raise-instance guard.
//
// Providers report observations (the whole current view of one alarm);
// the monitor alone decides what transition an observation is, so both
// providers (the alarm sub-attributes over a gateway-internal session, and
// the native alarm consumer in such a session's worker: the COM one on
// windows/386, the simulator's elsewhere) share one state machine.
// Failover switches between them and reports the provider in the feed.
package alarms
