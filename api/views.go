package api

import (
	"net/url"
	"strconv"
	"time"

	"pbxd/store"
)

// ms renders a time as epoch milliseconds, the unit the API uses throughout;
// the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func userURI(id string) string { return "/api/v1/users/" + url.PathEscape(id) }

// userView is a user as the API shows it. The password and its hash never
// appear; skills and devices only with subresources=*.
type userView struct {
	ID                         string         `json:"id"`
	URI                        string         `json:"uri"`
	UserName                   string         `json:"userName"`
	FirstName                  string         `json:"firstName"`
	LastName                   string         `json:"lastName"`
	Roles                      []string       `json:"roles"`
	DoNotDisturb               string         `json:"doNotDisturb"`
	ChangePasswordOnFirstLogin bool           `json:"changePasswordOnFirstLogin"`
	Extension                  string         `json:"extension,omitempty"`
	Timezone                   string         `json:"timezone"`
	Enabled                    bool           `json:"enabled"`
	HasPassword                bool           `json:"hasPassword"`
	CreatedAt                  int64          `json:"createdAt"`
	CreatedBy                  string         `json:"createdBy,omitempty"`
	ModifiedAt                 int64          `json:"modifiedAt"`
	ModifiedBy                 string         `json:"modifiedBy,omitempty"`
	PasswordModifiedAt         int64          `json:"passwordModifiedAt,omitempty"`
	AcdAutoLogin               bool           `json:"acdAutoLogin"`
	DefaultAcdLoginStatus      string         `json:"defaultAcdLoginStatus"`
	AcdAutoAccept              bool           `json:"acdAutoAccept"`
	ConnectTo                  string         `json:"connectTo"`
	ConnectNumber              string         `json:"connectNumber,omitempty"`
	Skills                     *[]skillAssign `json:"skills,omitempty"`
	Devices                    *[]deviceView  `json:"devices,omitempty"`
}

// DND values of the FlagV2 enum.
const (
	flagOn  = "on"
	flagOff = "off"
)

func flag(b bool) string {
	if b {
		return flagOn
	}
	return flagOff
}

func viewUser(u *store.User) userView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	tz := u.Timezone
	if tz == "" {
		tz = "UTC"
	}
	return userView{
		ID: u.ID, URI: userURI(u.ID), UserName: u.UserName, FirstName: u.FirstName, LastName: u.LastName,
		Roles: roles, DoNotDisturb: flag(u.DoNotDisturb), ChangePasswordOnFirstLogin: u.ChangePasswordOnFirstLogin,
		Extension: u.Extension, Timezone: tz, Enabled: u.Enabled, HasPassword: u.PasswordHash != "",
		CreatedAt: ms(u.CreatedAt), CreatedBy: u.CreatedBy, ModifiedAt: ms(u.ModifiedAt), ModifiedBy: u.ModifiedBy,
		PasswordModifiedAt: ms(u.PasswordModifiedAt), AcdAutoLogin: u.AcdAutoLogin, DefaultAcdLoginStatus: defaultLoginStatus(u),
		AcdAutoAccept: u.AcdAutoAccept, ConnectTo: u.ConnectTarget(), ConnectNumber: u.ConnectNumber,
	}
}

// defaultLoginStatus is the statusId an ACD login starts in when the
// client names none: the user's defaultAcdLoginStatus, or available.
func defaultLoginStatus(u *store.User) string {
	if u.DefaultAcdLoginStatus == "" {
		return store.StatusIDAvailable
	}
	return u.DefaultAcdLoginStatus
}

// skillAssign is a user's skill with the catalogue entry's name.
type skillAssign struct {
	SkillID     string `json:"skillId"`
	Name        string `json:"name"`
	Proficiency int    `json:"proficiency"`
	URI         string `json:"uri"`
}

type skillView struct {
	ID          string `json:"id"`
	URI         string `json:"uri"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	CreatedAt   int64  `json:"createdAt"`
	CreatedBy   string `json:"createdBy,omitempty"`
}

func skillURI(id string) string { return "/api/v1/skills/" + url.PathEscape(id) }

func viewSkill(sk *store.Skill) skillView {
	return skillView{ID: sk.ID, URI: skillURI(sk.ID), Name: sk.Name, Description: sk.Description,
		CreatedAt: ms(sk.CreatedAt), CreatedBy: sk.CreatedBy}
}

// deviceView shows a SIP device; Password is set only in the response that
// created or reset it.
type deviceView struct {
	ID        string `json:"id"`
	URI       string `json:"uri"`
	UserID    string `json:"userId"`
	Name      string `json:"name"`
	Username  string `json:"username"`
	Realm     string `json:"realm"`
	CreatedAt int64  `json:"createdAt"`
	CreatedBy string `json:"createdBy,omitempty"`
	Password  string `json:"password,omitempty"`
}

func viewDevice(d *store.Device) deviceView {
	return deviceView{ID: d.ID, URI: userURI(d.UserID) + "/devices/" + url.PathEscape(d.ID), UserID: d.UserID,
		Name: d.Name, Username: d.Username, Realm: d.Realm, CreatedAt: ms(d.CreatedAt), CreatedBy: d.CreatedBy}
}

// listEnvelope is the paging envelope of every collection.
type listEnvelope struct {
	Count    int     `json:"count"`
	Total    int     `json:"total"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Objects  any     `json:"objects"`
}

// page is a validated start/rows pair.
type page struct {
	start, rows int
}

const (
	defaultRows = 50
	maxRows     = 1000
)

// parsePage reads start and rows; anything malformed is a 400.
func parsePage(q url.Values) (page, *Problem) {
	pg := page{rows: defaultRows}
	if v, ok := q["start"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 || len(v) > 1 {
			return pg, invalid("start", "must be one integer ≥ 0")
		}
		pg.start = n
	}
	if v, ok := q["rows"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > maxRows || len(v) > 1 {
			return pg, invalid("rows", "must be one integer from 1 to "+strconv.Itoa(maxRows))
		}
		pg.rows = n
	}
	return pg, nil
}

// envelope builds the paging envelope; base carries the other query
// parameters so next/previous repeat the same search.
func (pg page) envelope(path string, base url.Values, total int, objects any, count int) listEnvelope {
	env := listEnvelope{Count: count, Total: total, Objects: objects}
	link := func(start int) *string {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		q.Set("start", strconv.Itoa(start))
		q.Set("rows", strconv.Itoa(pg.rows))
		s := path + "?" + q.Encode()
		return &s
	}
	if pg.start+count < total {
		env.Next = link(pg.start + count)
	}
	if pg.start > 0 {
		prev := pg.start - pg.rows
		if prev < 0 {
			prev = 0
		}
		env.Previous = link(prev)
	}
	return env
}
