"""The general-assistant prompt set: everyday requests written for this project.

Categories: explain, advice, summarize (a short text written here), brainstorm, rewrite,
math (generated word problems with a `reference` answer), reasoning (with a `reference`),
classify, creative and compare. Used for head-to-head win rates between policies.
"""
from __future__ import annotations

import random

SEED = 7

EXPLAIN = [
    "Explain how a refrigerator keeps food cold.",
    "Why is the sky blue during the day and red at sunset?",
    "Explain what inflation is and why prices rise over time.",
    "How does a vaccine help the body fight a disease?",
    "What is the difference between weather and climate?",
    "Explain how a bill becomes a law in a simple way.",
    "Why do we have leap years?",
    "How do noise-cancelling headphones work?",
    "Explain what a credit score is and why it matters.",
    "What causes the tides in the ocean?",
    "How does a search engine decide which pages to show first?",
    "Explain photosynthesis in a few sentences.",
    "Why does ice float on water?",
    "What is compound interest? Give a small example.",
    "How do plants know which way is up?",
    "Explain what an operating system does on a computer.",
    "Why do onions make people cry when they cut them?",
    "What is the greenhouse effect?",
    "How does a microwave oven heat food?",
    "Explain the difference between a virus and a bacterium.",
    "Why do cats purr?",
    "What does a central bank do?",
    "How does GPS know where my phone is?",
    "Explain why the moon has phases.",
    "What is a black hole, in plain words?",
    "Why does bread go stale?",
    "How do airplanes stay in the air?",
    "Explain what a recipe's 'room temperature butter' means and why it matters.",
    "What is the purpose of a fuse in an electrical circuit?",
    "Why do some people need glasses to read?",
]

ADVICE = [
    "I get nervous before speaking in meetings. What can I do?",
    "How can I start running if I have never exercised before?",
    "What are good ways to save money on groceries?",
    "My houseplant's leaves are turning yellow. What might be wrong?",
    "How should I prepare for my first job interview?",
    "I keep forgetting people's names right after I meet them. Any tips?",
    "How can I make my small apartment feel less cluttered?",
    "What should I pack for a three-day hiking trip?",
    "How do I politely decline an invitation from a coworker?",
    "What is a good way to learn to cook if I only know how to boil pasta?",
    "How can I get better sleep when my neighbours are noisy?",
    "My teenager spends too much time on their phone. How can I talk to them about it?",
    "How do I start learning to play the piano as an adult?",
    "What are some ways to stay focused while working from home?",
    "How can I reduce the amount of plastic I use each week?",
    "I want to read more books this year. How should I go about it?",
    "What should I check before buying a used bicycle?",
    "How can I make new friends after moving to a new town?",
    "What can I do to keep my laptop battery healthy?",
    "How do I ask my manager for a raise?",
    "My dog pulls hard on the leash. How can I train him to walk calmly?",
    "How should I organize my week so I stop missing deadlines?",
    "What is a sensible way to split chores with roommates?",
    "How can I keep my passwords safe without memorizing dozens of them?",
    "I have a long flight tomorrow. How can I make it more comfortable?",
    "How do I give helpful feedback to a colleague without upsetting them?",
    "What should I do if I lock myself out of my house?",
    "How can I make a small garden on a balcony?",
    "How do I stop procrastinating on a big school project?",
    "What are simple ways to eat more vegetables?",
]

_TEXTS = [
    "The town council met on Tuesday to discuss the old library building. Some members want to turn it into a "
    "community center with a cafe, while others prefer to repair it and keep it as a library. The repairs would "
    "cost less, but the community center could bring in rent. The council will vote next month after hearing from "
    "residents.",
    "Maria started baking bread during a long winter. Her first loaves were flat and heavy, so she read about "
    "yeast and kneading. After a few weeks of practice her bread rose well, and her neighbours began asking to buy "
    "it. She now sells twenty loaves every Saturday at the local market.",
    "Sea otters spend almost their whole lives in the water. They have the densest fur of any animal, which keeps "
    "them warm without a layer of fat. Otters often float on their backs and use rocks to crack open shellfish. "
    "When they sleep, they sometimes hold paws so they do not drift apart.",
    "Our company will move to a new office on the first of March. The new building is closer to the train station "
    "and has a larger kitchen. Staff should pack their desks by the last Friday of February. Movers will take all "
    "boxes over the weekend, and desks will be ready on Monday morning.",
    "A study followed two hundred students for a full school year. Students who slept at least eight hours on "
    "school nights scored higher on tests and reported feeling less stressed. The researchers say the link does "
    "not prove that sleep causes better grades, but they recommend later school start times.",
    "The museum's new exhibit shows tools used by farmers over three centuries. Visitors can try a hand plough, "
    "grind wheat with a stone mill, and compare it with a modern tractor's controls. The exhibit runs until "
    "September, and entry is free for children under twelve.",
    "Tom wanted to run a marathon but had only ever run a few kilometres. He followed a sixteen-week plan that "
    "added a little distance each week. He hurt his ankle in week ten and had to rest. He still finished the race, "
    "slowly, and says the rest week taught him to listen to his body.",
    "The city plans to add bike lanes to three main streets next year. Supporters say the lanes will make cycling "
    "safer and reduce traffic. Some shop owners worry about losing parking spaces in front of their stores. The "
    "city has promised to build a small parking area behind the main street.",
    "Honey never truly spoils. Archaeologists have found pots of honey in ancient tombs that were still edible. "
    "Its low water content and natural acidity stop bacteria from growing. If honey turns hard and grainy, gently "
    "warming the jar makes it smooth again.",
    "The phone update released last week fixed a battery problem but caused some apps to crash. The company has "
    "apologized and says a second update will arrive within days. Until then, it suggests restarting the phone if "
    "an app freezes.",
    "Lena found an injured sparrow in her garden. She placed it in a shoebox with a soft towel and called a local "
    "animal rescue. A volunteer picked the bird up that evening. Two weeks later, the rescue sent her a photo of "
    "the sparrow being released in a park.",
    "Volunteers cleaned the river bank on Sunday and collected more than four hundred kilograms of rubbish. Most "
    "of it was plastic bottles and food wrappers. The organizers hope to repeat the event every spring and have "
    "asked the city for more bins along the walking path.",
    "Many people believe that goldfish have a memory of only a few seconds. Experiments show otherwise: goldfish "
    "can learn to push a lever for food and remember it for months. They can even be trained to respond to sounds "
    "or colours.",
    "The school will switch to a four-day week for a one-year trial. Classes will be slightly longer each day, and "
    "Fridays will be used for clubs and extra help. Parents are divided: some welcome the change, others worry "
    "about childcare on Fridays.",
    "Old wooden windows can be repaired rather than replaced. Replacing the putty and adding weather strips often "
    "stops drafts. Repairs usually cost less than new windows and keep the look of older houses. However, double "
    "glazing still saves more energy in very cold places.",
    "Ahmed's grandmother taught him to make dumplings when he was eight. Years later he opened a small restaurant "
    "using her recipes. The restaurant is known for its long queues at lunchtime, and a photo of his grandmother "
    "hangs by the door.",
    "A new train line will connect the two largest cities in the region, cutting the journey from three hours to "
    "ninety minutes. Construction will take six years. Environmental groups support the line but have asked for "
    "tunnels to protect a forest along the route.",
    "Reading aloud to young children helps them learn new words and understand stories. Experts suggest pausing to "
    "ask questions about the pictures and what might happen next. Even ten minutes a day can make a difference.",
    "The bakery on Elm Street will close at the end of the month after forty years. The owners are retiring and "
    "could not find a buyer. Regular customers have organized a farewell party for the last day of business.",
    "Scientists tracked a group of humpback whales across the Pacific. The whales travelled more than five "
    "thousand kilometres from their feeding grounds to warmer waters to give birth. The data will help protect "
    "the routes from shipping traffic.",
    "Our team's project is two weeks behind schedule because a supplier delivered parts late. We can catch up by "
    "adding a second shift for the assembly work. This will raise costs by about five percent. I recommend we "
    "approve the extra shift.",
    "The library now lends more than books. Members can borrow tools, board games, musical instruments and even "
    "cake tins. The program started with donations from residents and has become one of the library's most "
    "popular services.",
    "After a storm knocked out power for two days, neighbours on Oak Road shared food from their freezers and "
    "cooked together on a gas grill. Several people said they met neighbours they had never spoken to before.",
    "Learning a second language may help older adults keep their minds sharp. In one study, people over sixty who "
    "took language classes for four months improved on memory and attention tests. Researchers say social "
    "contact in the classes may also have helped.",
    "The hiking trail to the waterfall will be closed for repairs until June. A landslide damaged a bridge on the "
    "trail in January. Hikers can use the longer northern path, which adds about an hour to the walk.",
]

SUMMARIZE_ASKS = ["Summarize the following text in one sentence.", "Summarize this text in two or three sentences.",
                  "What is the main point of this text?", "Write a short headline for this text."]

BRAINSTORM = [
    "Suggest five names for a bakery that specializes in bread.",
    "Give me ideas for a rainy-day activity with two young children.",
    "List some cheap date ideas in a big city.",
    "Brainstorm topics for a school science fair project about plants.",
    "What are some ways a small bookshop could attract more customers?",
    "Suggest themes for a ten-year-old's birthday party.",
    "Give me ideas for a short story set on a space station.",
    "List gifts under twenty dollars for a coworker who loves tea.",
    "Brainstorm ways to make a long car trip fun for a family.",
    "Suggest names for a podcast about gardening.",
    "What could a neighbourhood do to welcome new residents?",
    "Give me ideas for healthy snacks to bring to work.",
    "Suggest questions to ask when interviewing a grandparent about their life.",
    "List ways to reuse glass jars around the house.",
    "Brainstorm slogans for a campaign encouraging people to cycle to work.",
    "Give me ideas for a weekend project to learn basic programming.",
    "Suggest activities for a team-building afternoon at the office.",
    "What are some ideas for a photography walk in a city?",
    "Brainstorm uses for a small spare room.",
    "Suggest ways a school could reduce food waste in its cafeteria.",
    "List ideas for a one-day trip with no car.",
    "Give me ideas for a board game about the ocean.",
    "Suggest ways to celebrate a friend's promotion.",
    "Brainstorm names for a friendly robot in a children's book.",
    "What are some fun ways to practise mental arithmetic with kids?",
]

_REWRITES = [
    ("Rewrite this sentence to sound more polite:", "Send me the report now."),
    ("Rewrite this sentence to sound more polite:", "You forgot to close the door again."),
    ("Rewrite this in simpler words:", "The municipality will commence the renovation of the thoroughfare imminently."),
    ("Rewrite this in simpler words:", "Precipitation is anticipated throughout the duration of the afternoon."),
    ("Make this sentence more formal:", "Hey, can you guys check the numbers before the meeting?"),
    ("Make this sentence more formal:", "We're kinda late on the project but it'll be fine."),
    ("Fix the grammar in this sentence:", "Me and him goes to the store every days."),
    ("Fix the grammar in this sentence:", "There is many reasons why she don't like it."),
    ("Fix the spelling in this sentence:", "I recieved the pakage yesterday and it was definately broken."),
    ("Make this sentence shorter without losing its meaning:",
     "Due to the fact that it was raining very heavily, we made the decision to stay inside the house."),
    ("Make this sentence shorter without losing its meaning:",
     "At this point in time, we are not in a position to give you an answer to your question."),
    ("Rewrite this sentence in the active voice:", "The cake was eaten by the children."),
    ("Rewrite this sentence in the active voice:", "The window was broken by a ball during the game."),
    ("Rewrite this sentence in the passive voice:", "The committee approved the new budget."),
    ("Make this product description more exciting:", "This is a water bottle. It holds one litre. It is blue."),
    ("Make this announcement friendlier:", "The kitchen must be cleaned by all staff after use."),
    ("Rewrite this message so it sounds more confident:", "I think maybe I could possibly help with the project?"),
    ("Turn these notes into one clear sentence:", "meeting moved - Thursday 3pm - room 4 - bring laptops"),
    ("Turn these notes into one clear sentence:", "milk, eggs, bread - shop closes 8 - use the card"),
    ("Rewrite this sentence for a young child:", "Photosynthesis converts light energy into chemical energy."),
    ("Rewrite this complaint to be calm and constructive:",
     "Your delivery is always late and nobody ever answers the phone!"),
    ("Make this sentence sound less negative:", "The plan failed completely and wasted everyone's time."),
    ("Rewrite this sentence without using the word 'very':", "The film was very long and very boring."),
    ("Combine these two sentences into one:", "The train was late. We missed the start of the concert."),
    ("Split this long sentence into shorter ones:",
     "We went to the beach and it was sunny so we swam for hours and then we ate ice cream and walked home."),
]

REASONING = [
    ("If all roses are flowers and some flowers fade quickly, can we conclude that some roses fade quickly? "
     "Explain.", "No"),
    ("Anna is taller than Ben. Ben is taller than Carl. Who is the shortest?", "Carl"),
    ("A farmer has chickens and cows. There are 10 heads and 28 legs. How many cows are there?", "4"),
    ("If today is Wednesday, what day will it be in 10 days?", "Saturday"),
    ("I have two coins that add up to 30 cents, and one of them is not a nickel. What are the coins?",
     "a quarter and a nickel"),
    ("A bat and a ball cost 1.10 dollars together. The bat costs 1 dollar more than the ball. How much does the "
     "ball cost?", "0.05"),
    ("What comes next in the sequence 2, 4, 8, 16, ...?", "32"),
    ("What comes next in the sequence 1, 1, 2, 3, 5, 8, ...?", "13"),
    ("If it takes 5 machines 5 minutes to make 5 widgets, how long do 100 machines take to make 100 widgets?",
     "5 minutes"),
    ("Tom is older than Sue. Sue is older than Max. Is Max older than Tom?", "No"),
    ("A box has 3 red balls and 2 blue balls. If you take one ball without looking, is red or blue more likely?",
     "red"),
    ("Which is heavier: a kilogram of feathers or a kilogram of iron?", "neither"),
    ("If you overtake the person in second place in a race, what place are you in?", "second"),
    ("A clock shows 3:00. What is the angle between the hour hand and the minute hand?", "90 degrees"),
    ("Every student in the class plays chess or football. Eight play chess, ten play football and three play "
     "both. How many students are in the class?", "15"),
    ("If a shirt costs 20 dollars after a 20% discount, what was the original price?", "25"),
    ("A train leaves at 9:40 and the journey takes 1 hour 35 minutes. When does it arrive?", "11:15"),
    ("Sam has twice as many apples as Lily. Together they have 18. How many does Sam have?", "12"),
    ("Is the statement 'some even numbers are prime' true or false?", "true"),
    ("Three friends share a pizza cut into 8 slices equally, and the 2 leftover slices go to the dog. How many "
     "slices does each friend get?", "2"),
]

CLASSIFY = [
    ("Is this review positive or negative? 'The soup was cold and the waiter ignored us.'", "negative"),
    ("Is this review positive or negative? 'Lovely staff, and the cake was the best I have had.'", "positive"),
    ("Is this review positive or negative? 'It arrived on time, but it broke after two days.'", "negative"),
    ("Which of these is a fruit: carrot, apple, potato, onion?", "apple"),
    ("Which word does not belong: dog, cat, car, rabbit?", "car"),
    ("Is this sentence a question, a command or a statement? 'Please close the window.'", "command"),
    ("Classify this email subject as 'work' or 'personal': 'Quarterly budget review moved to Friday'", "work"),
    ("Classify this email subject as 'work' or 'personal': 'Photos from Grandma's birthday!'", "personal"),
    ("Is a tomato botanically a fruit or a vegetable?", "fruit"),
    ("Which is a mammal: shark, dolphin, trout, octopus?", "dolphin"),
    ("Is this statement a fact or an opinion? 'Paris is the capital of France.'", "fact"),
    ("Is this statement a fact or an opinion? 'Summer is the best season.'", "opinion"),
    ("What is the tone of this message: 'Thanks so much, you really saved my day!'", "grateful"),
    ("Extract the date from this sentence: 'The meeting is on the 14th of May at noon.'", "14 May"),
    ("Extract the names of the people in this sentence: 'Priya and Daniel met Ms. Okafor at the station.'",
     "Priya, Daniel, Ms. Okafor"),
]

CREATIVE = [
    "Write a haiku about autumn leaves.",
    "Write a four-line poem about a cat watching rain.",
    "Write a short bedtime story about a shy cloud.",
    "Describe a busy market using all five senses.",
    "Write a limerick about a forgetful chef.",
    "Write the first paragraph of a mystery set in a lighthouse.",
    "Write a thank-you note to a neighbour who watered my plants.",
    "Write a short toast for a friend's wedding.",
    "Invent a new holiday and describe how people celebrate it.",
    "Write a dialogue between a coffee cup and a teapot.",
    "Describe your ideal treehouse.",
    "Write a short letter from a dog to its owner.",
    "Write a motivational message for someone starting a new job.",
    "Write a product review for an imaginary umbrella that never gets wet.",
    "Write a short poem about the first snow of winter.",
]

COMPARE = [
    "Compare trains and planes for a 500-kilometre trip.",
    "What are the pros and cons of working from home?",
    "Compare renting and buying a home for a young couple.",
    "What are the differences between a laptop and a tablet for a student?",
    "Compare reading paper books and e-books.",
    "What are the advantages and disadvantages of living in a big city?",
    "Compare cats and dogs as pets for a busy person.",
    "What are the pros and cons of learning to drive at seventeen?",
    "Compare cooking at home with eating out.",
    "What are the differences between a debit card and a credit card?",
]


def _math(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """Word problems whose answer is computed here (so the `reference` field is right by construction)."""
    items = ["pencils", "apples", "notebooks", "tickets", "cupcakes", "stamps", "marbles", "bottles of juice"]
    names = ["Ava", "Ben", "Chloe", "Diego", "Emma", "Farah", "George", "Hana", "Ivan", "Jade"]
    out = []
    for i in range(n):
        kind = i % 5
        item, name = rng.choice(items), rng.choice(names)
        if kind == 0:
            price, qty = rng.randint(2, 9), rng.randint(3, 12)
            out.append((f"{item.capitalize()} cost {price} dollars each. How much do {qty} {item} cost?",
                        str(price * qty)))
        elif kind == 1:
            have, give = rng.randint(20, 60), rng.randint(3, 19)
            out.append((f"{name} has {have} {item} and gives away {give}. How many are left?", str(have - give)))
        elif kind == 2:
            groups, per = rng.randint(3, 9), rng.randint(4, 12)
            out.append((f"{name} packs {groups * per} {item} into boxes of {per}. How many boxes are needed?",
                        str(groups)))
        elif kind == 3:
            speed, hours = rng.randint(40, 90), rng.randint(2, 5)
            out.append((f"A car drives at {speed} km per hour for {hours} hours. How far does it travel?",
                        f"{speed * hours} km"))
        else:
            a, b = rng.randint(12, 99), rng.randint(12, 99)
            out.append((f"What is {a} times {b}? Show your working.", str(a * b)))
    return out


def build(seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    rows: list[tuple[str, str, str | None]] = []
    rows += [("explain", p, None) for p in EXPLAIN]
    rows += [("advice", p, None) for p in ADVICE]
    rows += [("summarize", f"{SUMMARIZE_ASKS[i % len(SUMMARIZE_ASKS)]}\n\n{t}", None) for i, t in enumerate(_TEXTS)]
    rows += [("brainstorm", p, None) for p in BRAINSTORM]
    rows += [("rewrite", f"{ask}\n\n{text}", None) for ask, text in _REWRITES]
    rows += [("math", q, a) for q, a in _math(rng, 30)]
    rows += [("reasoning", q, a) for q, a in REASONING]
    rows += [("classify", q, a) for q, a in CLASSIFY]
    rows += [("creative", p, None) for p in CREATIVE]
    rows += [("compare", p, None) for p in COMPARE]
    out = []
    for i, (cat, text, ref) in enumerate(rows, 1):
        rec = {"prompt_id": f"assistant-{i:03d}", "prompt": text, "category": cat}
        if ref is not None:
            rec["reference"] = ref
        out.append(rec)
    return out
