@testable import Analysis
import XCTest

final class StatisticsTests: XCTestCase {
    /// Average ranks against scipy.stats.rankdata([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]) (by hand: ties share their mean rank).
    func testAverageRanks() {
        XCTAssertEqual(Statistics.averageRanks([3, 1, 4, 1, 5, 9, 2, 6, 5, 3]), [4.5, 1.5, 6, 1.5, 7.5, 10, 3, 9, 7.5, 4.5])
    }

    /// numpy.percentile([1, 2, 4, 8], q) with linear interpolation: 2.5 -> 1.075, 97.5 -> 7.7, 50 -> 3.
    func testPercentile() {
        XCTAssertEqual(Statistics.percentile(sorted: [1, 2, 4, 8], 2.5), 1.075, accuracy: 1e-12)
        XCTAssertEqual(Statistics.percentile(sorted: [1, 2, 4, 8], 97.5), 7.7, accuracy: 1e-12)
        XCTAssertEqual(Statistics.percentile(sorted: [1, 2, 4, 8], 50), 3, accuracy: 1e-12)
    }

    /// The bootstrap interval of a mean is near mean ± 1.96 · sd/√n for a large
    /// sample (normal approximation; 1000 resamples: within 15% of the half-width).
    func testBootstrapAgreesWithNormalApproximation() {
        var g = SeededGenerator(seed: 7)
        let x = (0..<2000).map { _ in Double.random(in: 0..<1, using: &g) }
        let m = Statistics.mean(x)
        let sd = (x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(x.count - 1)).squareRoot()
        let half = 1.96 * sd / Double(x.count).squareRoot()
        let (lo, hi) = Statistics.bootstrapMeanCI(x, seed: 3)
        XCTAssertEqual(m - lo, half, accuracy: 0.15 * half)
        XCTAssertEqual(hi - m, half, accuracy: 0.15 * half)
        XCTAssertTrue(Statistics.bootstrapMeanCI(x, seed: 3) == (lo, hi), "seeded: the same interval again")
    }

    /// Ranking: signed by score, unsigned by magnitude, ties by position, specials never ranked.
    func testRanking() {
        let s: [Float] = [9, -3, 1, 3, -3, 2, 9]
        let word = [false, true, true, true, true, true, false]
        XCTAssertEqual(Evaluation.ranking(s, isWord: word, signed: true), [3, 5, 2, 1, 4])
        XCTAssertEqual(Evaluation.ranking(s, isWord: word, signed: false), [1, 3, 4, 5, 2])
        XCTAssertEqual(Evaluation.eraserCounts(7), [1, 1, 1, 2, 4])
        XCTAssertEqual(Evaluation.eraserCounts(20), [1, 1, 2, 4, 10])
        XCTAssertEqual(Evaluation.eraserCounts(0), [0, 0, 0, 0, 0])
    }
}
