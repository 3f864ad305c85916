package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"pbxd/store"
)

// Range types of getHistory and getHistoryByContactId. Every range is made
// of whole days of the time zone it is computed in, and includes today
// where its name says so:
//
//	today       today
//	yesterday   the day before today
//	last3days   today and the 2 days before (3 calendar days)
//	last7days   today and the 6 days before
//	last30days  today and the 29 days before
//	thisweek    Monday to Sunday of the current week
//	lastweek    Monday to Sunday of the week before
//	thismonth   the 1st to the last day of the current month
//	lastmonth   the whole month before
//	daterange   the dateRange parameter: from,to in epoch ms, both included
const (
	RangeToday      = "today"
	RangeYesterday  = "yesterday"
	RangeLast3Days  = "last3days"
	RangeLast7Days  = "last7days"
	RangeLast30Days = "last30days"
	RangeThisWeek   = "thisweek"
	RangeLastWeek   = "lastweek"
	RangeThisMonth  = "thismonth"
	RangeLastMonth  = "lastmonth"
	RangeDateRange  = "daterange"
)

// historyRange computes the window [from, to) of rangeType around now in
// loc. Midnights come from time.Date in loc, so days with a daylight-saving
// change are 23 or 25 hours long, as they are on the wall clock.
func historyRange(rangeType string, now time.Time, loc *time.Location) (from, to time.Time, ok bool) {
	t := now.In(loc)
	y, m, d := t.Date()
	day := func(offset int) time.Time { return time.Date(y, m, d+offset, 0, 0, 0, 0, loc) }
	monday := (int(t.Weekday()) + 6) % 7 // days since Monday
	switch rangeType {
	case RangeToday:
		return day(0), day(1), true
	case RangeYesterday:
		return day(-1), day(0), true
	case RangeLast3Days:
		return day(-2), day(1), true
	case RangeLast7Days:
		return day(-6), day(1), true
	case RangeLast30Days:
		return day(-29), day(1), true
	case RangeThisWeek:
		return day(-monday), day(7 - monday), true
	case RangeLastWeek:
		return day(-monday - 7), day(-monday), true
	case RangeThisMonth:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc), time.Date(y, m+1, 1, 0, 0, 0, 0, loc), true
	case RangeLastMonth:
		return time.Date(y, m-1, 1, 0, 0, 0, 0, loc), time.Date(y, m, 1, 0, 0, 0, 0, loc), true
	}
	return time.Time{}, time.Time{}, false
}

// historyWindow is the time window a history request asked for; zero
// bounds are open.
type historyWindow struct {
	rangeType string
	from, to  time.Time
}

const maxEpochMs = 1 << 50

// parseHistoryWindow reads rangeType and dateRange. With required, one of
// them must be given.
func parseHistoryWindow(q url.Values, now time.Time, loc *time.Location, required bool) (historyWindow, *Problem) {
	var win historyWindow
	rt, dr := q.Get("rangeType"), q.Get("dateRange")
	_, hasDR := q["dateRange"]
	switch {
	case rt == "" && !hasDR:
		if required {
			return win, invalid("rangeType", "is required: today, yesterday, thisweek, lastweek, last3days, last7days, last30days, thismonth, lastmonth or daterange with dateRange")
		}
		return win, nil
	case hasDR && rt != "" && rt != RangeDateRange:
		return win, invalid("dateRange", "goes with rangeType daterange (or no rangeType), not "+rt)
	case hasDR || rt == RangeDateRange:
		a, b, ok := strings.Cut(dr, ",")
		from, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
		to, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
		if !ok || err1 != nil || err2 != nil || from < 0 || to < from || to > maxEpochMs {
			return win, invalid("dateRange", "is from,to in epoch milliseconds (both included), from ≤ to")
		}
		return historyWindow{rangeType: RangeDateRange, from: time.UnixMilli(from), to: time.UnixMilli(to + 1)}, nil
	}
	from, to, ok := historyRange(rt, now, loc)
	if !ok {
		return win, invalid("rangeType", "must be today, yesterday, thisweek, lastweek, last3days, last7days, last30days, thismonth, lastmonth or daterange")
	}
	return historyWindow{rangeType: rt, from: from, to: to}, nil
}

// historyEnvelope is the seed's History {count, objects} with our paging
// members and the window that was searched (epoch ms, to excluded).
type historyEnvelope struct {
	Count     int     `json:"count"`
	Total     int     `json:"total"`
	Next      *string `json:"next"`
	Previous  *string `json:"previous"`
	Objects   any     `json:"objects"`
	RangeType string  `json:"rangeType,omitempty"`
	From      int64   `json:"from,omitempty"`
	To        int64   `json:"to,omitempty"`
}

func historyOf(env listEnvelope, win historyWindow) historyEnvelope {
	return historyEnvelope{Count: env.Count, Total: env.Total, Next: env.Next, Previous: env.Previous, Objects: env.Objects,
		RangeType: win.rangeType, From: ms(win.from), To: ms(win.to)}
}

// historyBase keeps the window parameters for the next/previous links.
func historyBase(q url.Values, keys ...string) url.Values {
	base := url.Values{}
	for _, k := range keys {
		if v, ok := q[k]; ok {
			base.Set(k, v[0])
		}
	}
	return base
}

// handleHistory is getHistory: the workitems a user took part in, in a
// range of days of that user's time zone (UTC when unset). Users read
// their own; with userId, supervisors, admins and history:read service
// users read anyone's.
func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := noQuery(r, "rangeType", "dateRange", "userId", "start", "rows"); prob != nil {
		return prob
	}
	q := r.URL.Query()
	pg, prob := parsePage(q)
	if prob != nil {
		return prob
	}
	uid := q.Get("userId")
	switch {
	case uid == "" && p.Kind != KindUser:
		return invalid("userId", "a service user must say whose history it reads")
	case uid == "":
		uid = p.ID
	case !store.ValidID(uid):
		return invalid("userId", "is not a user id")
	}
	if !p.IsSelf(uid) && !seesAllWorkitems(p) {
		return forbidden("reading another user's history needs the history:read permission")
	}
	var u *store.User
	if err := s.st.View(func(tx *store.Tx) (err error) { u, err = tx.GetUser(uid); return err }); err != nil {
		return respond(w, err, "user "+uid, 0, nil)
	}
	win, prob := parseHistoryWindow(q, s.now(), u.Location(), true)
	if prob != nil {
		return prob
	}
	var items []*store.Workitem
	var total int
	err := s.st.View(func(tx *store.Tx) (err error) {
		items, total, err = tx.ListWorkitems(store.WorkitemQuery{UserID: uid, Since: win.from, Until: win.to, Start: pg.start, Rows: pg.rows})
		return err
	})
	if err != nil {
		return err
	}
	objects := make([]workitemView, 0, len(items))
	for _, it := range items {
		objects = append(objects, viewWorkitem(it))
	}
	env := pg.envelope("/api/v1/history", historyBase(q, "rangeType", "dateRange", "userId"), total, objects, len(objects))
	writeJSON(w, http.StatusOK, historyOf(env, win))
	return nil
}

// matchWorkitem is the q search of a contact's history: every word in
// from, to, their names, the workitem's name or its context.
func matchWorkitem(words []string) func(w *store.Workitem) bool {
	if len(words) == 0 {
		return nil
	}
	return func(w *store.Workitem) bool {
		for _, word := range words {
			if !containsFold(w.From, word) && !containsFold(w.To, word) && !containsFold(w.FromName, word) &&
				!containsFold(w.ToName, word) && !containsFold(w.Extra.Name, word) && !containsFold(w.Extra.Context, word) {
				return false
			}
		}
		return true
	}
}

// handleContactHistory is getHistoryByContactId: every workitem recorded
// with the contact (whoever handled it), newest first. rangeType days are
// those of the caller's time zone. With mergeProperties=true each object
// also carries the contact's properties, merged in at the top level
// without replacing any member of the workitem.
func (s *Server) handleContactHistory(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if !p.Can(store.ScopeCallsControl) && !p.Can(store.ScopeHistoryRead) {
		return forbidden("reading a contact's history needs the calls:control or history:read permission")
	}
	if prob := noQuery(r, "rangeType", "dateRange", "q", "start", "rows", "mergeProperties"); prob != nil {
		return prob
	}
	q := r.URL.Query()
	pg, prob := parsePage(q)
	if prob != nil {
		return prob
	}
	merge := false
	if v, ok := q["mergeProperties"]; ok {
		b, err := strconv.ParseBool(v[0])
		if err != nil {
			return invalid("mergeProperties", "is true or false")
		}
		merge = b
	}
	if len(q.Get("q")) > 200 {
		return invalid("q", "at most 200 characters")
	}
	loc := time.UTC
	if p.Kind == KindUser {
		loc = p.User.Location()
	}
	win, prob := parseHistoryWindow(q, s.now(), loc, false)
	if prob != nil {
		return prob
	}
	var c *store.Contact
	var items []*store.Workitem
	var total int
	err := s.st.View(func(tx *store.Tx) error {
		var err error
		if c, err = tx.GetContact(id); err != nil {
			return err
		}
		items, total, err = tx.ListWorkitems(store.WorkitemQuery{ContactID: id, Since: win.from, Until: win.to,
			Match: matchWorkitem(strings.Fields(foldCase(q.Get("q")))), Start: pg.start, Rows: pg.rows})
		return err
	})
	if err != nil {
		return respond(w, err, "contact "+id, 0, nil)
	}
	var objects any
	if merge {
		list := make([]map[string]any, 0, len(items))
		for _, it := range items {
			m, err := mergeContact(viewWorkitem(it), c)
			if err != nil {
				return err
			}
			list = append(list, m)
		}
		objects = list
	} else {
		list := make([]workitemView, 0, len(items))
		for _, it := range items {
			list = append(list, viewWorkitem(it))
		}
		objects = list
	}
	env := pg.envelope(contactURI(id)+"/history", historyBase(q, "rangeType", "dateRange", "q", "mergeProperties"), total, objects, len(items))
	writeJSON(w, http.StatusOK, historyOf(env, win))
	return nil
}

// mergeContact is v as a JSON object with the contact's properties added
// where the workitem has no member of that name.
func mergeContact(v workitemView, c *store.Contact) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, val := range c.Properties {
		if _, taken := m[k]; !taken {
			m[k] = val
		}
	}
	if _, taken := m["contactName"]; !taken {
		m["contactName"] = c.Name()
	}
	return m, nil
}
