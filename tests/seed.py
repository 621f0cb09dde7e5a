"""The seed example: StatQuest's backpropagation example (Josh Starmer's videos
"Backpropagation Main Ideas" and "Backpropagation Details"), recomputed in float64.

Every test that checks chainrule against the video takes the network, the data and the
reference numbers from here, so each figure is written down once. They are plain
constants: the tests must not read files outside the repository (nor fetch anything), and
a copy here keeps them independent of chainrule's own scenarios and datasets, which they
check. Tolerances stay with the assertions that use them. Treat the lists and dicts as
read-only: build variants with ``{**FITTED, "b3": 1.0}``.
"""

#: The network, in the learner's notation: two softplus units between dosage and predicted.
FORMULA = """
x1 = w1 * dosage + b1
y1 = softplus(x1)
x2 = w2 * dosage + b2
y2 = softplus(x2)
predicted = w3 * y1 + w4 * y2 + b3
"""

#: The data: three doses, and whether each worked.
DOSAGE = [0.0, 0.5, 1.0]
OBSERVED = [0.0, 1.0, 0.0]

#: The fitted weights and biases, with b3 at 0: where the main ideas start estimating b3.
FITTED = {"w1": 3.34, "b1": -1.43, "w2": -3.53, "b2": 0.57, "w3": -1.22, "w4": -2.30, "b3": 0.0}
#: Three parameters: w3, w4 and b3 learned together from 0.36, 0.63 and 0; the rest fitted.
THREE_START = {**FITTED, "w3": 0.36, "w4": 0.63}
#: All seven parameters learned from the video's initial values.
START = {"w1": 2.74, "b1": 0.0, "w2": -1.13, "b2": 0.0, "w3": 0.36, "w4": 0.63, "b3": 0.0}

#: The fitted network at the three doses with b3 = 0: the video's blue curve (w3 * y1),
#: orange curve (w4 * y2) and their sum, the green predictions.
BLUE = [-0.2617557623, -1.0008025593, -2.4986714087]
ORANGE = [-2.3419094758, -0.6082167589, -0.1161982253]
GREEN = [-2.6036652381, -1.6090193182, -2.6148696340]

#: The main ideas' ledger: b3 alone from 0, learning rate 0.1, until |step size| < 0.001.
#: step | b3 | SSR | slope dSSR/db3 | step size | new b3
MAIN_IDEAS = [
    (1, 0.0000000000, 20.4235976776, -15.6551083806, -1.5655108381, 1.5655108381),
    (2, 1.5655108381, 3.2678283891, -6.2620433522, -0.6262043352, 2.1917151733),
    (3, 2.1917151733, 0.5229053029, -2.5048173409, -0.2504817341, 2.4421969074),
    (4, 2.4421969074, 0.0837176091, -1.0019269364, -0.1001926936, 2.5423896010),
    (5, 2.5423896010, 0.0134475781, -0.4007707745, -0.0400770775, 2.5824666785),
    (6, 2.5824666785, 0.0022043731, -0.1603083098, -0.0160308310, 2.5984975094),
    (7, 2.5984975094, 0.0004054603, -0.0641233239, -0.0064123324, 2.6049098418),
    (8, 2.6049098418, 0.0001176343, -0.0256493296, -0.0025649330, 2.6074747748),
    (9, 2.6074747748, 0.0000715821, -0.0102597318, -0.0010259732, 2.6085007480),
    (10, 2.6085007480, 0.0000642138, -0.0041038927, -0.0004103893, 2.6089111372),
]

#: The brute-force SSR curve at b3 = 0, 0.5, ..., 4 (the others fitted), to 6 decimals.
SCAN = [20.423598, 13.346043, 7.768489, 3.690935, 1.113381, 0.035827, 0.458273, 2.380718, 5.803164]

#: The first step from THREE_START (learning rate 0.1): the slopes and the new values.
THREE_SLOPES = {"w3": 2.576140, "w4": 1.256762, "b3": 1.899555}
THREE_AFTER = {"w3": 0.10238605, "w4": 0.50432377, "b3": -0.18995547}

#: The slopes of all seven at START ("Backpropagation Details Pt. 2").
START_SLOPES = {
    "w1": 0.76094372,
    "b1": 0.96728584,
    "w2": 0.33227638,
    "b2": 0.73222567,
    "w3": 7.14231440,
    "w4": 1.48728055,
    "b3": 3.45945441,
}
