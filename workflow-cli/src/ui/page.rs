//! The web UI's HTML: server-rendered with maud from the view models, with a little plain
//! JavaScript (`assets/ui.js`) for local times, live refresh, timeline zoom and confirmations.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use workflow_core::store::RunStatus;
use workflow_core::Timestamp;

use super::view::{encode, status_slug, RunView, RunsView, Timeline, STATUSES};

/// What the page may offer beyond reading.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Access {
    /// The endpoint serves writes.
    pub(crate) writes: bool,
    /// This browser holds the token writes need.
    pub(crate) token: bool,
}

fn layout(title: &str, live: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · workflows" }
                link rel="stylesheet" href="/ui/assets/ui.css";
                script src="/ui/assets/ui.js" defer {}
            }
            body data-live=(if live { "1" } else { "0" }) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" { a.brand href="/ui/" { "Workflows" } }
                    @if live { span.live-note aria-live="polite" { "live: refreshes every 2 s" } }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// A timestamp in UTC, with the local time shown by the script beside it.
fn time(t: Timestamp) -> Markup {
    html! { time datetime=(t.to_string()) data-ms=(t.0) { (t.to_string()) } }
}

fn badge(status: RunStatus) -> Markup {
    html! { span class={ "badge s-" (status_slug(status)) } { (status.to_string()) } }
}

fn run_link(workflow_id: &str) -> String {
    format!("/ui/runs/{}", encode(workflow_id))
}

/// The runs list.
pub(crate) fn runs_page(v: &RunsView) -> String {
    let q = &v.query;
    let body = html! {
        h1 { "Workflow runs" }
        div id="live" {
            nav.counts aria-label="Runs by status" {
                ul {
                    li { a href="/ui/" aria-current=[q.status.is_none().then_some("page")] { "all " strong { (v.total) } } }
                    @for (s, n) in &v.counts {
                        li { a class={ "s-" (status_slug(*s)) } href={ "/ui/?status=" (status_slug(*s)) }
                            aria-current=[(q.status == Some(*s)).then_some("page")] { (s.to_string()) " " strong { (n) } } }
                    }
                }
            }
            form.filters method="get" action="/ui/" role="search" {
                label { "Status "
                    select name="status" {
                        option value="" { "any" }
                        @for s in STATUSES { option value=(status_slug(s)) selected[q.status == Some(s)] { (s.to_string()) } }
                    }
                }
                label { "Type "
                    select name="type" {
                        option value="" { "any" }
                        @for t in &v.types { option value=(t) selected[q.workflow_type.as_deref() == Some(t.as_str())] { (t) } }
                    }
                }
                label { "Workflow id starts with "
                    input type="search" name="q" value=[q.q.as_deref()] placeholder="order-";
                }
                button type="submit" { "Filter" }
            }
            p.summary { (v.matching) " matching run" @if v.matching != 1 { "s" } ", newest first." }
            @if v.rows.is_empty() {
                p.empty { "No runs match." }
            } @else {
                div.scroll {
                    table.runs {
                        thead { tr {
                            th scope="col" { "Workflow ID" } th scope="col" { "Type" } th scope="col" { "Status" }
                            th scope="col" { "Started" } th scope="col" { "Closed" } th scope="col" { "Duration" } th scope="col" { "Run ID" }
                        } }
                        tbody {
                            @for r in &v.rows {
                                tr {
                                    td { a href=(run_link(&r.workflow_id)) { (r.workflow_id) } }
                                    td { (r.workflow_type) }
                                    td { (badge(r.status)) }
                                    td { (time(r.start)) }
                                    td { @if let Some(c) = r.close { (time(c)) } @else { "-" } }
                                    td.num { (r.duration) }
                                    td.mono title=(r.run_id) { (r.run_id.get(..8).unwrap_or(&r.run_id)) }
                                }
                            }
                        }
                    }
                }
                nav.pager aria-label="Pages" {
                    @if v.page > 1 { a rel="prev" href=(q.with_page(v.page - 1)) { "← Newer" } }
                    span { "Page " (v.page) " of " (v.pages) }
                    @if v.page < v.pages { a rel="next" href=(q.with_page(v.page + 1)) { "Older →" } }
                }
            }
        }
    };
    layout("Runs", v.live, body).into_string()
}

/// A run's page. `notice` is the outcome of an action just taken.
pub(crate) fn run_page(v: &RunView, access: Access, notice: Option<&str>) -> String {
    let i = &v.info;
    let link = run_link(&i.workflow_id);
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/" { "Workflows" } " › " span { (i.workflow_id) } }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        div id="live" {
            h1 { (i.workflow_id) " " (badge(i.status)) }
            @if let Some(stuck) = &v.stuck {
                section.stuck role="alert" aria-labelledby="stuck-h" {
                    h2 id="stuck-h" { "Stuck: its workflow task keeps failing" }
                    p { "The worker retries it with backoff; deploy code that matches the history (or use "
                        code { "ctx.patched" } "), or reset or terminate the run. As " code { "wf describe" } " shows it:" }
                    pre { (stuck) }
                }
            }
            section aria-labelledby="summary-h" {
                h2 id="summary-h" { "Summary" }
                dl.summary {
                    dt { "Type" } dd { (i.workflow_type) }
                    dt { "Run ID" } dd.mono { (i.run_id.to_string()) }
                    dt { "Started" } dd { (time(i.start_time)) }
                    dt { "Closed" } dd { @if let Some(c) = i.close_time { (time(c)) } @else { "still open" } }
                    dt { "Duration" } dd { (v.duration) }
                    @if let Some(p) = &i.parent {
                        dt { "Parent" } dd { a href=(run_link(&p.workflow_id)) { (p.workflow_id) } " (command " (p.seq) ")" }
                    }
                    @for o in &v.origin { dt { "Origin" } dd { (o) } }
                    dt { "Events" } dd { (v.events_total) " · " a href={ (link) "/history.json" } download { "download the history JSON" } }
                }
                details.payload id="input" { summary { "Input" } pre { (v.input) } }
                @if let Some(r) = &v.result { details.payload id="result" open { summary { "Result" } pre { (r) } } }
                @if !v.failure_chain.is_empty() {
                    div.failure role="group" aria-label="Failure" {
                        h3 { "Failure" }
                        ol.chain {
                            @for (n, (t, m)) in v.failure_chain.iter().enumerate() {
                                li { @if n > 0 { span.caused { "caused by " } } strong { (t) } ": " (m) }
                            }
                        }
                    }
                }
            }
            @if !v.pending.is_empty() {
                section aria-labelledby="pending-h" {
                    h2 id="pending-h" { "Pending" }
                    div.scroll { table {
                        thead { tr { th scope="col" { "Seq" } th scope="col" { "What" } th scope="col" { "Attempt" } th scope="col" { "State" }
                            th scope="col" { "Last heartbeat" } th scope="col" { "Since" } th scope="col" { "Last failure" } } }
                        tbody { @for p in &v.pending { tr {
                            td.num { (p.seq) } td { (p.name) " " span.kind { (p.kind) } }
                            td.num { @if let Some(a) = p.attempt { (a) } @else { "-" } }
                            td { (p.state) }
                            td.mono { @if let Some((d, _)) = &p.heartbeat { (d) } @else { "-" } }
                            td { @if let Some((_, a)) = &p.heartbeat { (a) } @else { "-" } }
                            td.bad { @if let Some(f) = &p.last_failure { (f) } @else { "-" } }
                        } } }
                    } }
                }
            }
            @if v.children.total > 0 {
                section aria-labelledby="children-h" {
                    h2 id="children-h" { "Children (" (v.children.total) ")" }
                    p.progress-line {
                        label for="children-progress" { (v.children.closed) " of " (v.children.total) " closed " }
                        progress id="children-progress" max=(v.children.total) value=(v.children.closed) { (v.children.closed) "/" (v.children.total) }
                    }
                    ul.counts-inline { @for (s, n) in &v.children.counts { li { (s) " " strong { (n) } } } }
                    div.scroll.tall { table {
                        thead { tr { th scope="col" { "Seq" } th scope="col" { "Workflow ID" } th scope="col" { "Type" } th scope="col" { "Status" } th scope="col" { "Parent-close policy" } } }
                        tbody { @for c in &v.children.rows { tr class=[c.bad.then_some("bad-row")] {
                            td.num { (c.seq) } td { a href=(run_link(&c.workflow_id)) { (c.workflow_id) } }
                            td { (c.workflow_type) } td { span class={ "badge s-" (c.status.replace(' ', "_")) } { (c.status) } } td { (c.policy) }
                        } } }
                    } }
                    @if v.children.rows.len() < v.children.total { p { "The first " (v.children.rows.len()) " are listed, failed ones first." } }
                }
            }
            (timeline(&v.timeline))
            section aria-labelledby="history-h" {
                h2 id="history-h" { "History" }
                p { (v.events_total) " events" @if v.events_pages > 1 { ", page " (v.events_page) " of " (v.events_pages) } ". "
                    a href={ (link) "/history.json" } download { "Download the history JSON" } " (the " code { "wf history --json" } " format)." }
                (events_pager(&link, v))
                div.scroll { table.events {
                    thead { tr { th scope="col" { "ID" } th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "Details" } } }
                    tbody { @for e in &v.events { tr class=[e.bad.then_some("bad-row")] id={ "event-" (e.id) } {
                        td.num { (e.id) }
                        td { span.rel { (e.relative) } br; (time(e.time)) }
                        td { (e.name) }
                        td { details id={ "ev-" (e.id) } { summary { (e.details) } pre { (e.json) } } }
                    } } }
                } }
                (events_pager(&link, v))
            }
            @if !v.attempts.is_empty() {
                section aria-labelledby="attempts-h" {
                    h2 id="attempts-h" { "Attempt log" }
                    @if v.attempts_pages > 1 {
                        nav.pager aria-label="Attempt log pages" {
                            @if v.attempts_page > 1 { a href={ (link) "?attempts_page=" (v.attempts_page - 1) "#attempts-h" } { "← Earlier" } }
                            span { (v.attempts_total) " attempts, page " (v.attempts_page) " of " (v.attempts_pages) }
                            @if v.attempts_page < v.attempts_pages { a href={ (link) "?attempts_page=" (v.attempts_page + 1) "#attempts-h" } { "Later →" } }
                        }
                    }
                    div.scroll { table.attempts {
                        thead { tr { th scope="col" { "Seq" } th scope="col" { "Activity" } th scope="col" { "Attempt" } th scope="col" { "Started" }
                            th scope="col" { "Duration" } th scope="col" { "Worker" } th scope="col" { "Outcome" } th scope="col" { "Heartbeat" } } }
                        tbody { @for a in &v.attempts { tr {
                            td.num { (a.seq) } td { (a.activity) } td.num { (a.attempt) } td { (time(a.started)) } td.num { (a.duration) }
                            td { (a.worker) } td { span class={ "outcome o-" (a.class) } { (a.outcome) } }
                            td.mono { @if let Some(h) = &a.heartbeat { (h) } @else { "-" } }
                        } } }
                    } }
                }
            }
        }
        (actions(&link, v, access))
    };
    layout(&i.workflow_id, v.live, body).into_string()
}

fn events_pager(link: &str, v: &RunView) -> Markup {
    html! {
        @if v.events_pages > 1 {
            nav.pager aria-label="History pages" {
                @if v.events_page > 1 { a href={ (link) "?events_page=" (v.events_page - 1) "#history-h" } { "← Earlier" } }
                span { "Page " (v.events_page) " of " (v.events_pages) }
                @if v.events_page < v.events_pages { a href={ (link) "?events_page=" (v.events_page + 1) "#history-h" } { "Later →" } }
            }
        }
    }
}

/// The SVG timeline: the time axis is 1000 units wide and stretched to the page (and by the
/// zoom buttons); one 20-unit lane per row.
fn timeline(t: &Timeline) -> Markup {
    const W: f64 = 1000.0;
    const LANE: f64 = 22.0;
    let span = (t.end.0.saturating_sub(t.start.0)).max(1) as f64;
    let x = |ts: Timestamp| (ts.0.saturating_sub(t.start.0)) as f64 / span * W;
    let height = (t.lanes.max(1) as f64) * LANE + 4.0;
    let mut svg = String::with_capacity(t.bars.len() * 160 + 256);
    svg.push_str(&format!(
        r#"<svg id="timeline-svg" role="img" aria-labelledby="timeline-h timeline-desc" viewBox="0 0 {W} {height}" preserveAspectRatio="none" height="{height}" width="100%">"#
    ));
    for b in &t.bars {
        let x0 = x(b.start);
        let w = (x(b.end) - x0).max(2.5);
        let y = b.lane as f64 * LANE + 2.0;
        svg.push_str(&format!(
            r#"<rect class="bar b-{}" x="{x0:.2}" y="{y}" width="{w:.2}" height="18"><title>{}</title></rect>"#,
            b.class,
            escape(&b.label)
        ));
    }
    svg.push_str("</svg>");
    let total = crate::render::format_duration(t.end.since(t.start));
    html! {
        section aria-labelledby="timeline-h" {
            h2 id="timeline-h" { "Timeline" }
            p id="timeline-desc" { (t.unmerged) " bars in " (t.lanes) " lane" @if t.lanes != 1 { "s" } " over " (total)
                ": each activity attempt, timer and child; an activity's retries share a lane, so the backoff between them shows as a gap. Hover a bar for what it was."
                @if t.unmerged > t.bars.len() { " Neighbours that look alike are merged into " (t.bars.len()) " shapes; the attempt log and the history list each." } }
            @if t.bars.is_empty() { p.empty { "Nothing scheduled yet." } } @else {
                div.zoom role="toolbar" aria-label="Timeline zoom" {
                    button type="button" data-zoom="out" aria-controls="timeline" { "−" span.sr { " zoom out" } }
                    button type="button" data-zoom="in" aria-controls="timeline" { "+" span.sr { " zoom in" } }
                    button type="button" data-zoom="reset" aria-controls="timeline" { "Fit" }
                }
                div.timeline id="timeline" { (PreEscaped(svg)) }
                div.axis { span { "+0ms" } span { "+" (total) } }
                ul.legend {
                    @for (class, what) in [("ok", "completed"), ("failed", "failed"), ("timed-out", "timed out"), ("lost", "worker lost"), ("cancelled", "cancelled"), ("running", "running or waiting"), ("timer", "timer"), ("child", "child running")] {
                        li { span class={ "swatch b-" (class) } {} (what) }
                    }
                }
            }
        }
    }
}

/// Text for HTML content and attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn actions(link: &str, v: &RunView, access: Access) -> Markup {
    html! {
        @if access.writes && !v.info.status.is_closed() {
            section.actions aria-labelledby="actions-h" {
                h2 id="actions-h" { "Actions" }
                @if !access.token {
                    p { "This endpoint needs its token for actions: open this page once with "
                        code { "?token=TOKEN" } " (the token the process printed, or " code { "AdminHandle::token()" } ")." }
                } @else {
                    div.action-forms {
                        form method="post" action={ (link) "/cancel" } data-confirm="Request cancellation of this run? Its code may run cleanup before it ends." {
                            h3 { "Cancel" }
                            label { "Reason " input name="reason" placeholder="why"; }
                            button type="submit" { "Request cancellation" }
                        }
                        form method="post" action={ (link) "/terminate" } data-confirm="Terminate this run now? No more of its code runs." {
                            h3 { "Terminate" }
                            label { "Reason " input name="reason" required placeholder="why"; }
                            button.danger type="submit" { "Terminate" }
                        }
                        form method="post" action={ (link) "/signal" } data-confirm="Send this signal?" {
                            h3 { "Signal" }
                            label { "Name " input name="name" required; }
                            label { "Payload (JSON) " textarea name="payload" rows="2" { "null" } }
                            button type="submit" { "Send signal" }
                        }
                    }
                }
            }
        }
    }
}

/// An error page with the HTTP status's meaning and the message.
pub(crate) fn error_page(title: &str, message: &str) -> String {
    layout(
        title,
        false,
        html! {
            nav.crumbs aria-label="Breadcrumb" { a href="/ui/" { "Workflows" } }
            h1 { (title) }
            p.error-message role="alert" { (message) }
        },
    )
    .into_string()
}
