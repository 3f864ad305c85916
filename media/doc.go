// Package media is pbxd's real-time audio: RTP endpoints, G.711, RFC 4733
// DTMF, the two-party bridge and the N-party mixer, and WebRTC legs. It knows
// nothing about users, SIP dialogs or HTTP.
package media
