package pbx

import (
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// supportedOptions are the option tags a request may Require of pbxd.
var supportedOptions = map[string]bool{}

// singletons are headers a request carries exactly once (RFC 3261 §7.3.1:
// they are not comma-separated lists).
var singletons = []string{"To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type"}

// check is the sanity stage every request passes after the parser and
// before its handler, much like a proxy's sanity module: it refuses what
// parses but cannot be processed correctly. It returns 0 for a request
// that may go on.
func check(req *sip.Request) (int, string, []sip.Header) {
	if req.SipVersion != "SIP/2.0" {
		return 505, "Version Not Supported", nil
	}
	for _, name := range singletons {
		if len(req.GetHeaders(name)) > 1 {
			return 400, "Duplicate " + name, nil
		}
	}
	if cs := req.CSeq(); cs != nil && !strings.EqualFold(string(cs.MethodName), string(req.Method)) {
		return 400, "CSeq Method Mismatch", nil
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips", "tel":
	default:
		return 416, "Unsupported URI Scheme", nil
	}
	if req.Method != sip.ACK && req.Method != sip.CANCEL {
		if h := req.GetHeader("Require"); h != nil {
			var unsupported []string
			for _, tag := range strings.Split(h.Value(), ",") {
				if tag = strings.TrimSpace(tag); tag != "" && !supportedOptions[tag] {
					unsupported = append(unsupported, tag)
				}
			}
			if len(unsupported) > 0 {
				return 420, "Bad Extension", []sip.Header{sip.NewHeader("Unsupported", strings.Join(unsupported, ", "))}
			}
		}
	}
	return 0, "", nil
}

// sane wraps a handler with check. ACKs are never answered.
func sane(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		code, reason, hdrs := check(req)
		if code == 0 {
			h(req, tx)
			return
		}
		if req.IsAck() {
			return
		}
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		for _, hd := range hdrs {
			res.AppendHeader(hd)
		}
		_ = tx.Respond(res)
	}
}

// knownMethods are SIP methods pbxd recognises but does not take.
var knownMethods = map[sip.RequestMethod]bool{
	sip.SUBSCRIBE: true, sip.NOTIFY: true, sip.REFER: true, sip.MESSAGE: true, sip.PUBLISH: true, sip.PRACK: true,
}

// handleNoRoute answers methods without a handler: 405 for SIP methods
// pbxd knows but does not take, 501 for the rest (RFC 3261 §8.2.1), both
// with Allow.
func handleNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	if req.IsAck() {
		return
	}
	code, reason := 501, "Not Implemented"
	if knownMethods[req.Method] {
		code, reason = 405, "Method Not Allowed"
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	_ = tx.Respond(res)
}
