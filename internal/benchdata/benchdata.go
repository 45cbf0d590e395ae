// Package benchdata is the vocabulary of the stores' benchmark fixtures:
// key names are team-env-purpose-NNNN and people are first.last, drawn from
// these lists, so that the fixtures of SQLite and PostgreSQL answer the same
// search fragments alike.
package benchdata

// Search fragments. Key names drawn from team-env-purpose-NNNN make the name
// fragments match about 1/40 (a team) and 1/4,800 (one team, env and
// purpose) of the keys; an email fragment matches a few people's keys.
const (
	TeamFragment  = "ledger"
	ComboFragment = "ledger-staging-rotation"
	EmailFragment = "amelia.okafor"
	ShortFragment = "q7"
)

// The words of key names (Teams, Envs, Purposes) and of people's names.
var (
	Teams = []string{"billing", "payments", "search", "checkout", "inventory", "shipping", "ledger",
		"identity", "analytics", "catalog", "pricing", "fraud", "support", "marketing", "growth", "platform",
		"infra", "data", "mobile", "web", "partners", "reporting", "compliance", "security", "notifications",
		"messaging", "media", "recommendations", "orders", "returns", "warehouse", "loyalty", "subscriptions",
		"tax", "treasury", "onboarding", "sso", "audit", "observability", "edge"}
	Envs     = []string{"prod", "staging", "dev", "ci", "sandbox"}
	Purposes = []string{"webhook", "sync", "ingest", "export", "reporting", "deploy", "backup",
		"monitoring", "cron", "importer", "gateway", "worker", "rotation", "migration", "scanner", "loadtest",
		"dashboard", "terraform", "etl", "alerts", "replica", "cli", "sdk", "integration"}
	First = []string{"amelia", "oliver", "isla", "noah", "ava", "leo", "mia", "arthur", "ivy", "oscar",
		"grace", "theo", "freya", "jack", "lily", "harry", "sophia", "george", "emily", "charlie", "ella",
		"jacob", "chloe", "alfie", "aria", "henry", "evie", "thomas", "ruby", "william", "lucas", "zara",
		"james", "nora", "samuel", "hana", "daniel", "yuki", "mateo", "lucia", "omar", "fatima", "arjun",
		"priya", "wei", "mei", "ivan", "olga", "kofi", "amara", "diego", "camila", "lars", "ingrid",
		"pierre", "chloé", "marco", "giulia", "sven", "astrid"}
	Last = []string{"smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies",
		"patel", "wright", "robinson", "thompson", "evans", "walker", "white", "roberts", "green", "hall",
		"wood", "jackson", "clarke", "okafor", "mensah", "nakamura", "tanaka", "kim", "park", "chen",
		"wang", "garcia", "martinez", "rossi", "bianchi", "müller", "schmidt", "dubois", "moreau",
		"novak", "kowalski", "ivanova", "haddad", "khan", "singh", "gupta", "silva", "santos", "larsen",
		"nielsen", "berg", "lindqvist", "obrien", "murphy", "kelly", "walsh", "byrne", "costa", "ferreira",
		"yilmaz", "demir", "cohen"}
)
