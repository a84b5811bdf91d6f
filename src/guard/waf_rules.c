/*
 * waf_rules.c - the ModSecurity directives Portico writes itself for a waf: configuration
 * (guard/waf.h): the head loaded before the CRS and the exclusions loaded after everything.
 * Pure text generation, no ModSecurity call, so the unit tests check it as text.
 *
 * The head sets the engine by mode (On, DetectionOnly), turns request body access on with
 * limits equal to body_limit (Portico buffers at most that much, so ModSecurity's own limit
 * never acts on its own, and over_limit picks Reject or ProcessPartial for completeness),
 * turns ModSecurity's own audit log off (Portico writes its own JSON lines), picks the XML and
 * JSON body processors by Content-Type (as ModSecurity's recommended configuration does; the
 * CRS 3.3 rules read ARGS, which a JSON body fills only through that processor), and refuses
 * a body that fails to parse (400, rule 200002) or a broken multipart body (200003). Then one
 * SecAction sets what crs-setup.conf's commented examples 900000, 900001 and 900110 would:
 * the paranoia level, the executing paranoia level and both anomaly thresholds; the CRS
 * initialisation (REQUEST-901) keeps values already set.
 *
 * The tail turns each exclude entry into SecRuleRemoveById / SecRuleRemoveByTag (whole rule)
 * or SecRuleUpdateTargetById / SecRuleUpdateTargetByTag with "!TARGET" (one variable); the
 * config loader already kept targets and tags to characters that cannot leave their quotes.
 */
#include "guard/waf.h"

#include <stdarg.h>
#include <stdio.h>

struct out {
    char *p;
    size_t cap, n;
    bool is_full;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->n < o->cap ? o->cap - o->n : 0;
    int k = vsnprintf(room ? o->p + o->n : NULL, room, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= room)
        o->is_full = true;
    else
        o->n += (size_t)k;
}

ssize_t pt_waf_head_text(const struct pt_waf_cfg *w, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0, false};
    put(&o, "SecRuleEngine %s\n", w->mode == PT_WAF_DETECT ? "DetectionOnly" : "On");
    put(&o, "SecRequestBodyAccess On\n");
    put(&o, "SecRequestBodyLimit %llu\n", (unsigned long long)w->body_limit);
    put(&o, "SecRequestBodyNoFilesLimit %llu\n", (unsigned long long)w->body_limit);
    put(&o, "SecRequestBodyLimitAction %s\n", w->is_over_limit_pass ? "ProcessPartial" : "Reject");
    put(&o, "SecResponseBodyAccess Off\n");
    put(&o, "SecAuditEngine Off\n");
    put(&o, "SecRule REQUEST_HEADERS:Content-Type \"@rx ^(?:application(?:/soap\\+|/)|text/)xml\" "
            "\"id:200000,phase:1,t:none,t:lowercase,pass,nolog,"
            "ctl:requestBodyProcessor=XML\"\n");
    put(&o, "SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/(?:[a-z0-9.-]+\\+)?json\" "
            "\"id:200001,phase:1,t:none,t:lowercase,pass,nolog,"
            "ctl:requestBodyProcessor=JSON\"\n");
    put(&o, "SecRule REQBODY_ERROR \"!@eq 0\" \"id:200002,phase:2,t:none,log,deny,status:400,"
            "msg:'Failed to parse request body',severity:2\"\n");
    put(&o, "SecRule MULTIPART_STRICT_ERROR \"!@eq 0\" \"id:200003,phase:2,t:none,log,deny,"
            "status:400,msg:'Multipart request body failed strict validation',severity:2\"\n");
    put(&o,
        "SecAction \"id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=%u,"
        "setvar:tx.executing_paranoia_level=%u,"
        "setvar:tx.inbound_anomaly_score_threshold=%u,"
        "setvar:tx.outbound_anomaly_score_threshold=%u\"\n",
        (unsigned)w->paranoia, (unsigned)w->paranoia, (unsigned)w->inbound_threshold,
        (unsigned)w->outbound_threshold);
    return o.is_full ? -1 : (ssize_t)o.n;
}

ssize_t pt_waf_tail_text(const struct pt_waf_cfg *w, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0, false};
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < w->n_excludes; i++) {
        const struct pt_waf_exclude *e = &w->excludes[i];
        char ids[32];
        if (e->id_lo == e->id_hi)
            snprintf(ids, sizeof(ids), "%u", (unsigned)e->id_lo);
        else
            snprintf(ids, sizeof(ids), "%u-%u", (unsigned)e->id_lo, (unsigned)e->id_hi);
        if (e->tag && e->target)
            put(&o, "SecRuleUpdateTargetByTag \"%s\" \"!%s\"\n", e->tag, e->target);
        else if (e->tag)
            put(&o, "SecRuleRemoveByTag \"%s\"\n", e->tag);
        else if (e->target)
            put(&o, "SecRuleUpdateTargetById %s \"!%s\"\n", ids, e->target);
        else
            put(&o, "SecRuleRemoveById %s\n", ids);
    }
    return o.is_full ? -1 : (ssize_t)o.n;
}
