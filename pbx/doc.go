// Package pbx is pbxd's call control: the SIP registrar and back-to-back
// user agent, trunks, agents and their workitems, conferences, supervisor
// monitoring and ACD routing. It depends on media for audio and on store for
// state, and knows nothing about HTTP.
package pbx
