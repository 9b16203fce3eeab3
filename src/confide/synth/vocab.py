"""Words for the identifying side of a synthetic record: names, streets, places, organisations.

The lists are short on purpose: names only need to look real enough that the practice agent's
minimisation has something to remove. Places are districts of Leeds, the area ``synth`` builds.
"""

from __future__ import annotations

GIVEN_FEMALE = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Sophia", "Grace", "Lily", "Freya", "Emily",
    "Ivy", "Ella", "Rosie", "Evie", "Florence", "Poppy", "Charlotte", "Willow", "Aisha", "Fatima",
    "Zara", "Maryam", "Priya", "Sarah", "Emma", "Claire", "Joanne", "Helen", "Rachel", "Laura",
    "Susan", "Margaret", "Patricia", "Jean", "Barbara", "Linda", "Elizabeth", "Dorothy", "Joan",
    "Karen", "Julie", "Nicola", "Amy", "Hannah", "Chloe", "Megan", "Jessica", "Lucy", "Anna",
    "Katarzyna",
)  # fmt: skip
GIVEN_MALE = (
    "Oliver", "George", "Noah", "Arthur", "Harry", "Leo", "Muhammad", "Jack", "Charlie", "Oscar",
    "Jacob", "Henry", "Thomas", "Freddie", "Alfie", "Theo", "William", "Ali", "Hassan", "Arjun",
    "Ravi", "David", "John", "Michael", "Paul", "Andrew", "Mark", "Richard", "Peter", "Stephen",
    "James", "Robert", "Christopher", "Daniel", "Matthew", "Gary", "Kevin", "Brian", "Keith",
    "Alan", "Colin", "Dennis", "Kenneth", "Ryan", "Liam", "Connor", "Samuel", "Joshua", "Adam",
    "Tomasz",
)  # fmt: skip
FAMILY = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Thomas", "Clarke", "Jackson", "Wood", "Harris", "Edwards", "Turner", "Martin", "Cooper",
    "Hill", "Ward", "Hughes", "Moore", "Clark", "King", "Harrison", "Lewis", "Baker", "Lee",
    "Allen", "Morris", "Khan", "Scott", "Watson", "Davis", "Parker", "James", "Bennett", "Young",
    "Phillips", "Richardson", "Mitchell", "Bailey", "Carter", "Cook", "Singh", "Shaw", "Bell",
    "Collins", "Morgan", "Kelly", "Begum", "Miller", "Cox", "Hussain", "Marshall", "Simpson",
    "Price", "Anderson", "Adams", "Wilkinson", "Ali", "Ahmed", "Foster", "Ellis", "Murphy",
    "Chapman", "Mason", "Gray", "Richards", "Webb", "Griffiths", "Hunt", "Palmer", "Campbell",
    "Holmes", "Mills", "Barnes", "Knight", "Lloyd", "Butler", "Russell", "Barker", "Fisher",
    "Stevens", "Jenkins", "Murray", "Dixon", "Harvey", "Graham", "Pearson", "Ahmad", "Nowak",
    "Kowalski", "Okafor", "Mensah",
)  # fmt: skip
STREETS = (
    "Albion", "Park", "Church", "Station", "Victoria", "Queen's", "Kirkstall", "Otley",
    "Harrogate", "Wakefield", "York", "Roundhay", "Meanwood", "Chapeltown", "Burley", "Cardigan",
    "Woodhouse", "Belle Vue", "Elland", "Dewsbury", "Selby", "Tong", "Scott Hall", "Stainbeck",
    "Street Lane", "Moor", "Mill", "Beech", "Oak", "Ash", "Chestnut", "Willow", "Hawthorn",
    "Rosemont", "Granby", "Brudenell", "Headingley", "Spen", "Tinshill", "Cookridge", "Ring",
    "Gledhow", "Harehills", "Compton", "Cross Flatts", "Dewsbury", "Town Street", "Low",
    "High", "Springfield",
)  # fmt: skip
STREET_SUFFIXES = ("Road", "Street", "Lane", "Avenue", "Grove", "Terrace", "Crescent", "Mount",
                   "Drive", "Close", "View", "Place")  # fmt: skip
PLACES = (
    "Armley", "Beeston", "Chapel Allerton", "Headingley", "Horsforth", "Kirkstall", "Meanwood",
    "Moortown", "Pudsey", "Rothwell", "Roundhay", "Seacroft", "Yeadon", "Garforth", "Wetherby",
    "Otley", "Morley", "Burley", "Hyde Park", "Harehills", "Holbeck", "Hunslet", "Crossgates",
    "Bramley", "Farsley", "Guiseley", "Alwoodley", "Adel", "Oakwood", "Gipton", "Halton",
    "Whitkirk", "Middleton", "Belle Isle", "Woodhouse", "Calverley", "Rawdon", "Boston Spa",
    "Drighlington", "Gildersome", "Kippax", "Methley", "Colton", "Swarcliffe", "Wortley",
)  # fmt: skip
PRACTICE_KINDS = ("Surgery", "Medical Centre", "Health Centre", "Medical Practice",
                  "Family Practice", "Group Practice")  # fmt: skip

# West Yorkshire and nearby acute trusts (ODS code, name); extra trusts get made-up R-codes.
TRUSTS = (
    ("RR8", "Leeds Teaching Hospitals NHS Trust"),
    ("RAE", "Bradford Teaching Hospitals NHS Foundation Trust"),
    ("RXF", "Mid Yorkshire Teaching NHS Trust"),
    ("RCD", "Harrogate and District NHS Foundation Trust"),
    ("RWY", "Calderdale and Huddersfield NHS Foundation Trust"),
    ("RCF", "Airedale NHS Foundation Trust"),
    ("RCB", "York and Scarborough Teaching Hospitals NHS Foundation Trust"),
    ("RHQ", "Sheffield Teaching Hospitals NHS Foundation Trust"),
)

TITLES_FEMALE = (("Mrs", 0.45), ("Ms", 0.25), ("Miss", 0.25), ("Dr", 0.05))
TITLES_MALE = (("Mr", 0.96), ("Dr", 0.04))
