"""The report's words, in English and Simplified Chinese.

Category wording follows GB 45438-2025's explicit labels ("人工智能生成",
"疑似人工智能生成"); status wording matches the browser extension's badges.
Every piece of text in the report comes from here, so a missing translation
is a KeyError in the tests, never an English word in a Chinese report.
"""

from __future__ import annotations

LANGS = ("en", "zh-CN")

TEXT: dict[str, dict[str, str]] = {
    "title": {"en": "labelcheck audit report", "zh-CN": "labelcheck 审计报告"},
    "subtitle": {
        "en": "Verifications and registry changes recorded in the audit ledger",
        "zh-CN": "审计账本记录的核验结果与登记变更",
    },
    "generated": {"en": "Generated", "zh-CN": "生成时间"},
    "period": {"en": "Period covered", "zh-CN": "覆盖时段"},
    "no_period": {"en": "no entries", "zh-CN": "无条目"},
    # The proof panel.
    "proof_title": {"en": "What was verified", "zh-CN": "已核验内容"},
    "proof_ok": {
        "en": "The bundle was verified offline before this report was written.",
        "zh-CN": "本报告生成前，已离线核验该数据包。",
    },
    "bundle_kind": {"en": "Bundle", "zh-CN": "数据包"},
    "bundle_complete": {
        "en": "complete log of {n} entries (every index from 0 to {last})",
        "zh-CN": "完整日志，共 {n} 条（索引 0 至 {last} 全部在内）",
    },
    "bundle_complete_empty": {"en": "complete log, empty (0 entries)", "zh-CN": "完整日志，空（0 条）"},
    "bundle_filtered": {
        "en": "filtered: {m} entries, each proven included in the log of size {n}",
        "zh-CN": "筛选导出：{m} 条，每条均已证明包含在规模为 {n} 的日志中",
    },
    "filter": {"en": "Filter", "zh-CN": "筛选条件"},
    "filtered_note": {
        "en": "A filtered bundle proves each entry shown is in the log; it does not prove that no matching "
              "entry was left out. Counts below cover the entries in this bundle only.",
        "zh-CN": "筛选导出只证明所列条目确在日志中，不能证明没有遗漏符合条件的条目。以下统计仅覆盖本数据包中的条目。",
    },
    "checkpoint": {"en": "Signed checkpoint", "zh-CN": "签名检查点"},
    "origin": {"en": "Origin", "zh-CN": "日志来源"},
    "size": {"en": "Tree size", "zh-CN": "树规模"},
    "root": {"en": "Root hash", "zh-CN": "根哈希"},
    "vkey": {"en": "Verifier key", "zh-CN": "验证公钥"},
    "key_id": {"en": "Key id", "zh-CN": "密钥标识"},
    "trusted": {"en": "Trusted checkpoint", "zh-CN": "可信检查点"},
    "trusted_ok": {
        "en": "consistent with the checkpoint trusted before, at size {n}: the log only grew",
        "zh-CN": "与此前信任的检查点（规模 {n}）一致：日志只增未改",
    },
    "trusted_none": {"en": "none given", "zh-CN": "未提供"},
    # Summary cards.
    "entries": {"en": "Entries", "zh-CN": "条目"},
    "verifications": {"en": "Verifications", "zh-CN": "核验次数"},
    "invalid_total": {"en": "Invalid", "zh-CN": "无效"},
    "mismatch_total": {"en": "Content mismatches", "zh-CN": "内容不符"},
    "registry_events": {"en": "Registry changes", "zh-CN": "登记变更"},
    "claims_published": {"en": "Claims published", "zh-CN": "已发布声明"},
    "other_entries": {"en": "{n} entries of other kinds", "zh-CN": "另有 {n} 条其他类型条目"},
    # Charts.
    "daily_title": {"en": "Verifications per {bucket} by status", "zh-CN": "按{bucket}统计的核验结果"},
    "bucket_day": {"en": "day", "zh-CN": "日"},
    "bucket_week": {"en": "week (from Monday)", "zh-CN": "周（自周一起）"},
    "bucket_month": {"en": "month", "zh-CN": "月"},
    "no_data": {"en": "No verifications in this bundle.", "zh-CN": "本数据包中没有核验记录。"},
    "producers_title": {
        "en": "Producers ranked by invalid and mismatched labels",
        "zh-CN": "按无效与内容不符标识排序的生成方",
    },
    "producers_none": {
        "en": "No producer key had an invalid or mismatched label.",
        "zh-CN": "没有生成方密钥出现无效或内容不符的标识。",
    },
    "producers_more": {"en": "{n} more keys not shown.", "zh-CN": "另有 {n} 个密钥未列出。"},
    "producers_overflow": {
        "en": "{n} verifications named keys beyond the first {cap} distinct ones and are counted only in the totals.",
        "zh-CN": "{n} 条核验涉及前 {cap} 个密钥以外的密钥，仅计入总数。",
    },
    "unregistered": {"en": "not in the registry entries of this bundle", "zh-CN": "本数据包的登记记录中没有此密钥"},
    "revoked_tag": {"en": "revoked", "zh-CN": "已吊销"},
    "legend_invalid": {"en": "invalid", "zh-CN": "无效"},
    "legend_mismatch": {"en": "content mismatch", "zh-CN": "内容不符"},
    "of_total": {"en": "of {n} checked", "zh-CN": "共核验 {n} 次"},
    "categories_title": {"en": "Share of each category", "zh-CN": "各类别占比"},
    "timeline_title": {"en": "Registry events", "zh-CN": "登记事件时间线"},
    "timeline_none": {"en": "No registry changes in this bundle.", "zh-CN": "本数据包中没有登记变更。"},
    "timeline_more": {
        "en": "Only the first {cap} of {n} registry events are drawn.",
        "zh-CN": "共 {n} 个登记事件，仅绘出前 {cap} 个。",
    },
    "action_add": {"en": "producer added", "zh-CN": "新增生成方"},
    "action_revoke": {"en": "producer revoked", "zh-CN": "吊销生成方"},
    "action_other": {"en": "other change", "zh-CN": "其他变更"},
    # Tables.
    "worst_title": {"en": "Worst items", "zh-CN": "问题最严重的条目"},
    "worst_intro": {
        "en": "Invalid results first, then those that could not be checked; newest first within each. "
              "Each receipt (index and leaf hash) can be proven against the checkpoint above.",
        "zh-CN": "先列无效结果，再列无法核验的结果；同类按时间由新到旧。每个回执（索引与叶哈希）都可对照上方检查点证明。",
    },
    "worst_none": {"en": "No invalid or unverifiable results.", "zh-CN": "没有无效或无法核验的结果。"},
    "worst_more": {"en": "Showing {k} of {n}.", "zh-CN": "共 {n} 条，显示 {k} 条。"},
    "col_rank": {"en": "#", "zh-CN": "序号"},
    "col_time": {"en": "Time (UTC)", "zh-CN": "时间（UTC）"},
    "col_status": {"en": "Status", "zh-CN": "状态"},
    "col_category": {"en": "Category", "zh-CN": "类别"},
    "col_producer": {"en": "Producer", "zh-CN": "生成方"},
    "col_reasons": {"en": "Reasons", "zh-CN": "原因"},
    "col_page": {"en": "Page origin", "zh-CN": "页面来源"},
    "col_receipt": {"en": "Receipt", "zh-CN": "回执"},
    "col_action": {"en": "Change", "zh-CN": "变更"},
    "col_filing": {"en": "Filing", "zh-CN": "备案号"},
    "index": {"en": "index", "zh-CN": "索引"},
    "leaf_hash": {"en": "leaf hash", "zh-CN": "叶哈希"},
    "count": {"en": "count", "zh-CN": "数量"},
    "share": {"en": "share", "zh-CN": "占比"},
    "none_value": {"en": "—", "zh-CN": "—"},
    "footer": {
        "en": "This file is self-contained: it loads nothing from the network and runs no scripts. "
              "Names and reasons are shown as recorded in the ledger.",
        "zh-CN": "本文件自包含：不从网络加载任何内容，也不运行脚本。名称与原因按账本记录原样显示。",
    },
}

STATUS: dict[str, dict[str, str]] = {
    "verified": {"en": "verified", "zh-CN": "已验证"},
    "invalid": {"en": "invalid", "zh-CN": "无效"},
    "unverified": {"en": "unverified", "zh-CN": "未能核验"},
    "declared": {"en": "declared only", "zh-CN": "仅有声明"},
    "none": {"en": "no label", "zh-CN": "无标识"},
    "other": {"en": "other", "zh-CN": "其他"},
}

CATEGORY: dict[str, dict[str, str]] = {
    "confirmed": {"en": "AI-generated", "zh-CN": "人工智能生成"},
    "possible": {"en": "possibly AI-generated", "zh-CN": "可能为人工智能生成"},
    "suspected": {"en": "suspected AI-generated", "zh-CN": "疑似人工智能生成"},
    "none": {"en": "no category", "zh-CN": "无类别"},
}

# Machine reason codes (docs/protocol.md §3); unknown codes are shown as recorded.
REASON: dict[str, dict[str, str]] = {
    "signature_ok": {"en": "signature valid", "zh-CN": "签名有效"},
    "signature_invalid": {"en": "bad signature", "zh-CN": "签名无效"},
    "content_match": {"en": "content matches", "zh-CN": "内容一致"},
    "content_mismatch": {"en": "content mismatch", "zh-CN": "内容不符"},
    "unknown_key": {"en": "unknown key", "zh-CN": "未知密钥"},
    "revoked_key": {"en": "revoked key", "zh-CN": "密钥已吊销"},
    "key_revoked_later": {"en": "key revoked later", "zh-CN": "密钥其后被吊销"},
    "expired": {"en": "expired", "zh-CN": "已过期"},
    "not_yet_valid": {"en": "not yet valid", "zh-CN": "尚未生效"},
    "malformed": {"en": "malformed", "zh-CN": "格式错误"},
    "fetch_failed": {"en": "fetch failed", "zh-CN": "获取失败"},
    "not_producer": {"en": "key is not a producer", "zh-CN": "密钥非生成方"},
    "c2pa_trusted": {"en": "C2PA trusted", "zh-CN": "C2PA 可信"},
    "c2pa_untrusted": {"en": "C2PA untrusted", "zh-CN": "C2PA 不可信"},
    "c2pa_invalid": {"en": "C2PA invalid", "zh-CN": "C2PA 无效"},
    "signals_conflict": {"en": "signals conflict", "zh-CN": "信号冲突"},
    "countersignature_ok": {"en": "countersignature valid", "zh-CN": "副署有效"},
    "countersignature_invalid": {"en": "bad countersignature", "zh-CN": "副署无效"},
    "countersigner_unknown": {"en": "unknown countersigner", "zh-CN": "未知副署方"},
    "countersigner_revoked": {"en": "countersigner revoked", "zh-CN": "副署方已吊销"},
    "countersigner_not_propagator": {"en": "countersigner not a propagator", "zh-CN": "副署方非传播方"},
}


class Words:
    """The strings of one language: ``w("title")``, ``w.status("invalid")``."""

    def __init__(self, lang: str):
        if lang not in LANGS:
            raise ValueError(f"unknown report language {lang!r}; use one of {', '.join(LANGS)}")
        self.lang = lang

    def __call__(self, key: str, **values) -> str:
        text = TEXT[key][self.lang]
        return text.format(**values) if values else text

    def status(self, status: str) -> str:
        return STATUS.get(status, STATUS["other"])[self.lang]

    def category(self, category: str) -> str:
        return CATEGORY[category][self.lang]

    def reason(self, code: str) -> str:
        """The wording of a known reason code; an unknown code as recorded."""
        known = REASON.get(code)
        return known[self.lang] if known else code
