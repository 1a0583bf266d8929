@testable import Analysis
import Foundation
import XCTest

final class ReportTests: XCTestCase {
    /// The sample's groups as documented: every misclassified record first
    /// (most confident first), then half the remaining places to the least
    /// confident, the rest a seeded random sample in index order; no record twice.
    func testSampleGroups() {
        let indices = Array(0..<10)
        let confidence = [0.99, 0.6, 0.95, 0.51, 0.7, 0.9, 0.8, 0.55, 0.97, 0.85]
        let wrong = [false, true, false, false, true, false, false, false, false, false]
        let s = ReportData.sample(indices: indices, confidence: confidence, wrong: wrong, budget: 6, seed: 1)
        XCTAssertEqual(s.filter { $0.group == 0 }.map(\.index), [4, 1], "misclassified, most confident first")
        XCTAssertEqual(s.filter { $0.group == 1 }.map(\.index), [3, 7], "least confident of the rest")
        let random = s.filter { $0.group == 2 }.map(\.index)
        XCTAssertEqual(random.count, 2)
        XCTAssertEqual(random, random.sorted())
        XCTAssertEqual(Set(s.map(\.index)).count, 6, "no record twice")
        XCTAssertTrue(Set(random).isDisjoint(with: [1, 3, 4, 7]))
        XCTAssertEqual(ReportData.sample(indices: indices, confidence: confidence, wrong: wrong, budget: 6, seed: 1).map(\.index), s.map(\.index), "seeded")
        // A budget smaller than the misclassified: only those; larger than the run: everything.
        XCTAssertEqual(ReportData.sample(indices: indices, confidence: confidence, wrong: wrong, budget: 1, seed: 1).map(\.index), [4])
        let all = ReportData.sample(indices: indices, confidence: confidence, wrong: wrong, budget: 50, seed: 1)
        XCTAssertEqual(Set(all.map(\.index)), Set(indices))
        XCTAssertEqual(all.filter { $0.group == 1 }.map(\.index), [3, 7, 6, 9], "at most half of the rest (8 records)")
    }

    /// The data cannot close the page's <script>: every '<' is the JSON escape, and it reads back the same.
    func testScriptSafeJSON() throws {
        let v = JSONValue.object([("text", .string("a </script><script>alert(1)</script> <!-- b"))])
        let page = ReportPage.html(data: v, evaluation: nil)
        XCTAssertEqual(page.components(separatedBy: "</script>").count - 1, 3, "only the page's own three scripts end")
        let start = try XCTUnwrap(page.range(of: "id=\"report-data\">"))
        let json = page[start.upperBound...].components(separatedBy: "</script>")[0]
        let back = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        XCTAssertEqual(back["text"], "a </script><script>alert(1)</script> <!-- b")
    }
}
