@testable import Analysis
import Foundation
import XCTest

/// The analyses against the libraries they imitate: scikit-learn's
/// classification report, scipy's correlations and the seed's own word
/// ranking, re-implemented in Python over committed run shards
/// (Tests/Fixtures/analysis/reference.json, made by tools/analysis/make_reference.py).
final class ReferenceTests: XCTestCase {
    static let fixtures = checkout.appendingPathComponent("Tests/Fixtures/analysis")

    func reference() throws -> [String: Any] {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("reference.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Every number of sklearn's classification_report and confusion_matrix, within 1e-12.
    func testClassificationReportEqualsScikitLearn() throws {
        let cases = try XCTUnwrap(reference()["classification"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 12)
        for (n, c) in cases.enumerated() {
            let truth = (c["truth"] as! [NSNumber]).map(\.intValue), predicted = (c["predicted"] as! [NSNumber]).map(\.intValue)
            let report = try XCTUnwrap(ClassificationReport(truth: truth, predicted: predicted))
            XCTAssertEqual(report.classes, (c["classes"] as! [NSNumber]).map(\.intValue), "case \(n)")
            XCTAssertEqual(report.accuracy, (c["accuracy"] as! NSNumber).doubleValue, accuracy: 1e-12, "case \(n)")
            func same(_ s: ClassificationReport.Scores, _ r: Any, _ what: String) {
                let r = r as! [String: NSNumber]
                XCTAssertEqual(s.precision, r["precision"]!.doubleValue, accuracy: 1e-12, "case \(n) \(what) precision")
                XCTAssertEqual(s.recall, r["recall"]!.doubleValue, accuracy: 1e-12, "case \(n) \(what) recall")
                XCTAssertEqual(s.f1, r["f1-score"]!.doubleValue, accuracy: 1e-12, "case \(n) \(what) f1")
                XCTAssertEqual(Double(s.support), r["support"]!.doubleValue, "case \(n) \(what) support")
            }
            let perClass = c["per_class"] as! [Any]
            XCTAssertEqual(report.perClass.count, perClass.count)
            for (s, r) in zip(report.perClass, perClass) { same(s, r, "class") }
            same(report.macro, c["macro"]!, "macro")
            same(report.weighted, c["weighted"]!, "weighted")
            XCTAssertEqual(report.confusion, (c["confusion"] as! [[NSNumber]]).map { $0.map(\.intValue) }, "case \(n)")
        }
    }

    /// scipy.stats.pearsonr and spearmanr (average ranks for ties), within 1e-12.
    func testCorrelationsEqualScipy() throws {
        let cases = try XCTUnwrap(reference()["correlation"] as? [[String: Any]])
        var worst = 0.0
        for (n, c) in cases.enumerated() {
            let x = (c["x"] as! [NSNumber]).map(\.doubleValue), y = (c["y"] as! [NSNumber]).map(\.doubleValue)
            let p = (c["pearson"] as! NSNumber).doubleValue, s = (c["spearman"] as! NSNumber).doubleValue
            worst = max(worst, abs(Statistics.pearson(x, y) - p), abs(Statistics.spearman(x, y) - s))
            XCTAssertEqual(Statistics.pearson(x, y), p, accuracy: 1e-12, "case \(n)")
            XCTAssertEqual(Statistics.spearman(x, y), s, accuracy: 1e-12, "case \(n)")
        }
        print("correlations: worst difference from scipy \(worst)")
    }

    /// `words` over two committed runs equals the seed's load_attribution_scores
    /// (normalized=True) over the same shards: every token's mean and count in
    /// the seed's order, and the runs' Pearson/Spearman over the common tokens.
    func testWordRankingEqualsTheSeed() throws {
        let words = try XCTUnwrap(reference()["words"] as? [String: [String: Any]])
        let runs = try ["run-a", "run-b"].map { try FinishedRun(Self.fixtures.appendingPathComponent($0)) }
        var worstMean = 0.0, worstCorrelation = 0.0
        for method in ["gs", "lat"] {
            for specials in [false, true] {
                let ref = try XCTUnwrap(words["\(method)\(specials ? "+specials" : "")"])
                let ranking = ref["ranking"] as! [[String: Any]]
                var o = WordOptions()
                o.methods = [method]
                o.specials = specials
                o.top = ranking.count
                let result = try WordRanking.run(runs, options: o)
                let m = try XCTUnwrap(object(object(result.document, "methods"), method))
                guard case let .array(top)? = object(m, "top") else { return XCTFail("no top list") }
                XCTAssertEqual(top.count, ranking.count, "\(method) specials \(specials): tokens ranked")
                for (i, (ours, theirs)) in zip(top, ranking).enumerated() {
                    guard case let .string(token)? = object(ours, "token") else { return XCTFail("no token") }
                    let mean = number(object(ours, "mean"))!, refMean = (theirs["mean"] as! NSNumber).doubleValue
                    worstMean = max(worstMean, abs(mean - refMean))
                    // Equal means may sit in another order only when the sums rounded apart.
                    if token != theirs["token"] as! String {
                        XCTAssertEqual(mean, refMean, accuracy: 1e-12, "\(method) rank \(i): \(token) vs \(theirs["token"]!)")
                    }
                    XCTAssertEqual(mean, refMean, accuracy: 1e-12, "\(method) rank \(i) \(token)")
                    XCTAssertEqual(number(object(ours, "count")), (theirs["count"] as! NSNumber).doubleValue, "\(method) rank \(i) \(token)")
                }
                XCTAssertEqual(number(object(m, "common_tokens")), (ref["common_tokens"] as! NSNumber).doubleValue)
                for name in ["pearson", "spearman"] {
                    guard case let .array(rows)? = object(m, name), case let .array(row0) = rows[0] else { return XCTFail("no \(name)") }
                    let ours = number(row0[1])!, theirs = (ref[name] as! NSNumber).doubleValue
                    worstCorrelation = max(worstCorrelation, abs(ours - theirs))
                    XCTAssertEqual(ours, theirs, accuracy: 1e-6, "\(method) \(name)")
                    XCTAssertEqual(number(row0[0])!, 1, accuracy: 1e-12)
                }
            }
        }
        print("words: worst mean difference from the seed's ranking \(worstMean), correlation \(worstCorrelation)")
    }
}
